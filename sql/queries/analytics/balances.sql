-- name: BalanceCountNegative :one
-- Workers whose closed day ended below zero.
SELECT count(*) FROM balances WHERE business_date = $1 AND closing < 0;
