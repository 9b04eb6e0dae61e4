-- name: CloseLock :exec
-- Serialises closes across replicas until the transaction ends.
SELECT pg_advisory_xact_lock(hashtext('ates.dailyaccounting.close'));

-- name: ClosedDayInsert :exec
INSERT INTO closed_days (business_date, workers)
VALUES ($1, $2);
