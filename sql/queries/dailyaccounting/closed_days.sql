-- name: CloseLock :exec
-- Serialises closes across replicas until the transaction ends. The key is
-- daily_close_lock_key() (migration 00006), shared with taskhandler and the closed-day trigger.
SELECT pg_advisory_xact_lock(daily_close_lock_key());

-- name: ClosedDayInsert :exec
INSERT INTO closed_days (business_date, workers)
VALUES ($1, $2);
