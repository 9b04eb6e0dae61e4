-- name: CloseLock :exec
-- Serialises closes across replicas until the transaction ends.
SELECT pg_advisory_xact_lock(hashtext('ates.dailyaccounting.close'));

-- name: ClosedDayLast :one
SELECT business_date FROM closed_days
ORDER BY business_date DESC
LIMIT 1;

-- name: ClosedDayInsert :exec
INSERT INTO closed_days (business_date, workers)
VALUES ($1, $2);
