-- name: BalanceCountNegative :one
-- Workers whose closed day ended below zero.
SELECT count(*) FROM balances WHERE business_date = $1 AND closing < 0;

-- name: BalanceListNegative :many
-- The workers whose closed day ended below zero, lowest first, at most @max_rows.
SELECT u.id, u.name, u.email, b.closing
FROM balances b
JOIN users u ON u.id = b.user_id
WHERE b.business_date = @day::date AND b.closing < 0
ORDER BY b.closing, u.id
LIMIT @max_rows;
