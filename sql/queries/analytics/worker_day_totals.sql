-- name: TotalEarningsByDay :many
-- The company's result per day with activity in [from, to]: -(rewards + fees).
SELECT business_date,
       (-coalesce(sum(rewards + fees), 0))::bigint AS earnings
FROM worker_day_totals
WHERE business_date BETWEEN @from_day::date AND @to_day::date
GROUP BY business_date
ORDER BY business_date;

-- name: TotalsByWorkerDay :many
-- Every worker's rewards and fees per day with activity in (after, through], by worker
-- and day: what open balances are computed from.
SELECT user_id, business_date, rewards, fees
FROM worker_day_totals
WHERE business_date > @after::date
  AND business_date <= @through::date
ORDER BY user_id, business_date;
