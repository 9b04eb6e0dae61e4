-- name: BalanceGet :one
-- A user's closed day.
SELECT * FROM balances
WHERE user_id = $1 AND business_date = $2;
