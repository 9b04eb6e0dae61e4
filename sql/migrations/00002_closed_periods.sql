-- +goose Up
-- A closed business day is closed for good: no audit_log or balances row may be written
-- into it, moved into it, or changed or deleted in it, whoever writes. Days close in
-- order, so a day is closed when it is on or before the last row of closed_days; money
-- after a close belongs to the first open day (the day after it, or today if later).
--
-- The checks are constraint triggers that are not deferrable: they see each row at the
-- end of its statement, so the daily close still writes a day's balances and payouts
-- before the statement that marks the day in closed_days. A refusal is SQLSTATE 23514
-- (check_violation) naming the trigger as its constraint.

-- +goose StatementBegin
CREATE FUNCTION keep_closed_days() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_closed date;
BEGIN
    -- A writer waits here while a daily close runs (the close holds this lock
    -- exclusively; taskhandler takes it shared too: same key), then sees the day it
    -- closed. Without it a row could slip into a day whose close already summed it.
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

CREATE CONSTRAINT TRIGGER audit_log_open_day
    AFTER INSERT OR UPDATE OR DELETE ON audit_log
    NOT DEFERRABLE
    FOR EACH ROW EXECUTE FUNCTION keep_closed_days();

CREATE CONSTRAINT TRIGGER balances_open_day
    AFTER INSERT OR UPDATE OR DELETE ON balances
    NOT DEFERRABLE
    FOR EACH ROW EXECUTE FUNCTION keep_closed_days();

-- +goose Down
DROP TRIGGER balances_open_day ON balances;
DROP TRIGGER audit_log_open_day ON audit_log;
DROP FUNCTION keep_closed_days();
