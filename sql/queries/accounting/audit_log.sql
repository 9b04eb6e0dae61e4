-- name: LogSumsByDay :many
-- A user's rewards and fees per day with activity in (after, through], oldest first.
SELECT business_date,
       coalesce(sum(amount) FILTER (WHERE kind = 'reward'), 0)::bigint AS rewards,
       coalesce(sum(amount) FILTER (WHERE kind = 'fee'), 0)::bigint AS fees
FROM audit_log
WHERE user_id = @user_id
  AND business_date > @after::date
  AND business_date <= @through::date
  AND kind IN ('fee', 'reward')
GROUP BY business_date
ORDER BY business_date;

-- name: LogListByUserDay :many
-- One page of a user's rows of a day, oldest first, after the row with id @after_id.
SELECT l.id, l.task_id, coalesce(t.description, '')::text AS task_description,
       l.kind, l.amount, l.business_date, l.created_at
FROM audit_log l
LEFT JOIN tasks t ON t.id = l.task_id
WHERE l.user_id = @user_id AND l.business_date = @day AND l.id > @after_id
ORDER BY l.id
LIMIT @page_limit;

-- name: LogSumsOfDay :one
-- Every user's rewards and fees of a day together: what the company paid and charged.
SELECT coalesce(sum(amount) FILTER (WHERE kind = 'reward'), 0)::bigint AS rewards,
       coalesce(sum(amount) FILTER (WHERE kind = 'fee'), 0)::bigint AS fees
FROM audit_log
WHERE business_date = $1;
