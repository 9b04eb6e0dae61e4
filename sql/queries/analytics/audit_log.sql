-- name: LogEarningsByDay :many
-- The company's result per day with activity in [from, to]: -(rewards + fees).
SELECT business_date,
       (-coalesce(sum(amount), 0))::bigint AS earnings
FROM audit_log
WHERE business_date BETWEEN @from_day::date AND @to_day::date
  AND kind IN ('fee', 'reward')
GROUP BY business_date
ORDER BY business_date;

-- name: LogWorkerSumsByDay :many
-- Every worker's rewards and fees per day with activity in (after, through], by worker
-- and day: what open balances are computed from.
SELECT l.user_id, l.business_date,
       coalesce(sum(l.amount) FILTER (WHERE l.kind = 'reward'), 0)::bigint AS rewards,
       coalesce(sum(l.amount) FILTER (WHERE l.kind = 'fee'), 0)::bigint AS fees
FROM audit_log l
WHERE l.business_date > @after::date
  AND l.business_date <= @through::date
  AND l.kind IN ('fee', 'reward')
GROUP BY l.user_id, l.business_date
ORDER BY l.user_id, l.business_date;
