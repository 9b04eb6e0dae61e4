-- name: BalanceCountNegative :one
-- Workers whose closed day ended below zero.
SELECT count(*) FROM balances WHERE business_date = $1 AND closing < 0;

-- name: BalanceCarries :many
-- What each worker carried out of a closed day (zero or negative).
SELECT user_id, carry FROM balances WHERE business_date = $1;
