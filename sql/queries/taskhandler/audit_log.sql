-- name: LogInsertMany :copyfrom
-- The money rows of a batch of events in one COPY, so that the read-model trigger runs
-- once per batch and upserts its (worker, day) rows in key order.
INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7);
