-- name: ClosedDayExists :one
SELECT EXISTS (SELECT 1 FROM closed_days WHERE business_date = $1);

-- name: ClosedDayLastBefore :one
-- The last closed day before $1; days close in order, so every day after it is open.
SELECT business_date FROM closed_days
WHERE business_date < $1
ORDER BY business_date DESC
LIMIT 1;
