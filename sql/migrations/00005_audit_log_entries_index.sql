-- +goose NO TRANSACTION
-- +goose Up
-- GetBalance's page of a worker's entries of a day reads its audit rows from this index
-- alone (an index-only scan, once vacuum has marked the pages visible) instead of one
-- heap page per row scattered over the day's log. Built concurrently, so that writers
-- of a large audit_log are not held up while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_user_date_entries_idx
    ON audit_log (user_id, business_date, id) INCLUDE (task_id, kind, amount, created_at);
DROP INDEX CONCURRENTLY IF EXISTS audit_log_user_date_idx;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_user_date_idx ON audit_log (user_id, business_date, id);
DROP INDEX CONCURRENTLY IF EXISTS audit_log_user_date_entries_idx;
