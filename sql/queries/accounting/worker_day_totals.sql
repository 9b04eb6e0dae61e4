-- name: TotalsByDay :many
-- A user's rewards and fees per day with activity in (after, through], oldest first.
SELECT business_date, rewards, fees
FROM worker_day_totals
WHERE user_id = @user_id
  AND business_date > @after::date
  AND business_date <= @through::date
ORDER BY business_date;

-- name: TotalsOfDay :one
-- Every user's rewards and fees of a day together: what the company paid and charged.
SELECT coalesce(sum(rewards), 0)::bigint AS rewards,
       coalesce(sum(fees), 0)::bigint AS fees
FROM worker_day_totals
WHERE business_date = $1;
