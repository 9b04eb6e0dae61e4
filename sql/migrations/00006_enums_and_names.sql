-- +goose Up
-- Task status, user role and audit kind become enum types, so that sqlc generates typed
-- constants for them (tasksdb.TaskStatusComplete, authdb.UserRoleWorker, ...) and no Go
-- code compares against string literals. Existing rows convert in place. Queries of the
-- previous release keep working against the new types (labels and parameters are sent
-- as text), except its tasks API's ListTasks filtered by status, which compared the
-- column with a text parameter: that call fails until the tasks API is upgraded too.
--
-- The daily-close advisory lock key lives in one function, daily_close_lock_key(): the
-- closed-day trigger, the daily close (exclusive) and taskhandler (shared) all call it.

CREATE TYPE task_status AS ENUM ('in_progress', 'complete');
CREATE TYPE user_role AS ENUM ('worker', 'manager', 'admin', 'accountant');
CREATE TYPE audit_kind AS ENUM ('fee', 'reward', 'payout');

-- Partial indexes and a trigger's WHEN compare these columns; they are rebuilt around
-- the type change.
DROP INDEX users_active_workers_idx;
DROP INDEX tasks_in_progress_idx;
DROP TRIGGER tasks_top_complete ON tasks;
DROP TRIGGER tasks_top_insert ON tasks;

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ALTER COLUMN role TYPE user_role USING role::user_role;

ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks DROP CONSTRAINT tasks_check;
ALTER TABLE tasks ALTER COLUMN status DROP DEFAULT;
ALTER TABLE tasks ALTER COLUMN status TYPE task_status USING status::task_status;
ALTER TABLE tasks ALTER COLUMN status SET DEFAULT 'in_progress';
ALTER TABLE tasks ADD CONSTRAINT tasks_check CHECK ((status = 'complete') = (completed_at IS NOT NULL));

ALTER TABLE audit_log DROP CONSTRAINT audit_log_kind_check;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_check;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_check1;
ALTER TABLE audit_log ALTER COLUMN kind TYPE audit_kind USING kind::audit_kind;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_check CHECK ((kind = 'payout') = (task_id IS NULL));
ALTER TABLE audit_log ADD CONSTRAINT audit_log_check1 CHECK (CASE kind WHEN 'reward' THEN amount > 0 ELSE amount < 0 END);

CREATE INDEX users_active_workers_idx ON users (id) WHERE role = 'worker' AND active;
CREATE INDEX tasks_in_progress_idx ON tasks (id) WHERE status = 'in_progress';
CREATE TRIGGER tasks_top_complete AFTER UPDATE ON tasks
    FOR EACH ROW WHEN (NEW.status = 'complete' AND OLD.status <> 'complete')
    EXECUTE FUNCTION task_tops_offer();
CREATE TRIGGER tasks_top_insert AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.status = 'complete')
    EXECUTE FUNCTION task_tops_offer();

-- The key of the daily close's advisory lock. The value is the one used so far, so
-- that processes of the previous release and this one still exclude each other.
CREATE FUNCTION daily_close_lock_key() RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN hashtext('ates.dailyaccounting.close');

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION keep_closed_days() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_closed date;
BEGIN
    -- A writer waits here while a daily close runs (the close holds this lock
    -- exclusively; taskhandler takes it shared too: same key), then sees the day it
    -- closed. Without it a row could slip into a day whose close already summed it.
    PERFORM pg_advisory_xact_lock_shared(daily_close_lock_key());
    SELECT max(business_date) INTO last_closed FROM closed_days;
    IF last_closed IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.business_date <= last_closed THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation', CONSTRAINT = TG_NAME, TABLE = TG_TABLE_NAME, COLUMN = 'business_date',
            MESSAGE = format('%s row refused: business day %s is closed (the last closed day is %s)',
                             TG_TABLE_NAME, NEW.business_date, last_closed),
            HINT = format('write activity after a close on the first open day, %s or later', last_closed + 1);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.business_date <= last_closed THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation', CONSTRAINT = TG_NAME, TABLE = TG_TABLE_NAME, COLUMN = 'business_date',
            MESSAGE = format('%s row of closed business day %s cannot change', TG_TABLE_NAME, OLD.business_date);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION keep_closed_days() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_closed date;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('ates.dailyaccounting.close'));
    SELECT max(business_date) INTO last_closed FROM closed_days;
    IF last_closed IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.business_date <= last_closed THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation', CONSTRAINT = TG_NAME, TABLE = TG_TABLE_NAME, COLUMN = 'business_date',
            MESSAGE = format('%s row refused: business day %s is closed (the last closed day is %s)',
                             TG_TABLE_NAME, NEW.business_date, last_closed),
            HINT = format('write activity after a close on the first open day, %s or later', last_closed + 1);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.business_date <= last_closed THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation', CONSTRAINT = TG_NAME, TABLE = TG_TABLE_NAME, COLUMN = 'business_date',
            MESSAGE = format('%s row of closed business day %s cannot change', TG_TABLE_NAME, OLD.business_date);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
DROP FUNCTION daily_close_lock_key();

DROP INDEX users_active_workers_idx;
DROP INDEX tasks_in_progress_idx;
DROP TRIGGER tasks_top_complete ON tasks;
DROP TRIGGER tasks_top_insert ON tasks;

ALTER TABLE audit_log DROP CONSTRAINT audit_log_check;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_check1;
ALTER TABLE audit_log ALTER COLUMN kind TYPE text USING kind::text;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_kind_check CHECK (kind IN ('fee', 'reward', 'payout'));
ALTER TABLE audit_log ADD CONSTRAINT audit_log_check CHECK ((kind = 'payout') = (task_id IS NULL));
ALTER TABLE audit_log ADD CONSTRAINT audit_log_check1 CHECK (CASE kind WHEN 'reward' THEN amount > 0 ELSE amount < 0 END);

ALTER TABLE tasks DROP CONSTRAINT tasks_check;
ALTER TABLE tasks ALTER COLUMN status DROP DEFAULT;
ALTER TABLE tasks ALTER COLUMN status TYPE text USING status::text;
ALTER TABLE tasks ALTER COLUMN status SET DEFAULT 'in_progress';
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check CHECK (status IN ('in_progress', 'complete'));
ALTER TABLE tasks ADD CONSTRAINT tasks_check CHECK ((status = 'complete') = (completed_at IS NOT NULL));

ALTER TABLE users ALTER COLUMN role TYPE text USING role::text;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('worker', 'manager', 'admin', 'accountant'));

CREATE INDEX users_active_workers_idx ON users (id) WHERE role = 'worker' AND active;
CREATE INDEX tasks_in_progress_idx ON tasks (id) WHERE status = 'in_progress';
CREATE TRIGGER tasks_top_complete AFTER UPDATE ON tasks
    FOR EACH ROW WHEN (NEW.status = 'complete' AND OLD.status <> 'complete')
    EXECUTE FUNCTION task_tops_offer();
CREATE TRIGGER tasks_top_insert AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.status = 'complete')
    EXECUTE FUNCTION task_tops_offer();

DROP TYPE audit_kind;
DROP TYPE user_role;
DROP TYPE task_status;
