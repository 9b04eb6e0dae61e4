-- name: ClosedDayLast :one
-- The last closed day, or 0001-01-01 (Go's zero time.Time) if none was ever closed. Days
-- close in order, so every day up to it is closed and every day after it is open; the
-- first open day is the later of today and the day after it (ledger.FirstOpen).
SELECT coalesce(max(business_date), DATE '0001-01-01')::date AS last FROM closed_days;

-- name: ClosedDayExists :one
SELECT EXISTS (SELECT 1 FROM closed_days WHERE business_date = $1);

-- name: ClosedDayLastBefore :one
-- The last closed day before $1; days close in order, so every day after it is open.
SELECT business_date FROM closed_days
WHERE business_date < $1
ORDER BY business_date DESC
LIMIT 1;
