-- +goose Up
-- A closed business day is closed for good: no audit-log row may be written into it,
-- moved into it or changed or deleted in it, whoever writes. Days close in order, so a
-- day is closed when it is on or before the last row of closed_days. The trigger is a
-- constraint trigger that is not deferrable: it checks at the end of each statement, so
-- the daily close can still write a day's payout rows before it marks the day closed in
-- the same transaction.

-- +goose StatementBegin
CREATE FUNCTION audit_log_keep_closed_days() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_closed date := (SELECT max(business_date) FROM closed_days);
BEGIN
    IF last_closed IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.business_date <= last_closed THEN
        RAISE EXCEPTION 'business day % is closed (the last closed day is %): money is written to the first open day, %',
                NEW.business_date, last_closed, last_closed + 1
            USING ERRCODE = 'check_violation', CONSTRAINT = 'audit_log_open_day';
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.business_date <= last_closed THEN
        RAISE EXCEPTION 'audit-log row % is in closed business day %: it cannot change', OLD.id, OLD.business_date
            USING ERRCODE = 'check_violation', CONSTRAINT = 'audit_log_open_day';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE CONSTRAINT TRIGGER audit_log_open_day
    AFTER INSERT OR UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_keep_closed_days();

-- +goose Down
DROP TRIGGER audit_log_open_day ON audit_log;
DROP FUNCTION audit_log_keep_closed_days();
