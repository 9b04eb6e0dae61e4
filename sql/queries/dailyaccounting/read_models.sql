-- name: VerifyTotals :many
-- Every (worker, day) whose worker_day_totals row differs from a recomputation from
-- audit_log (a missing row counts as zeros), by day and worker.
WITH log AS (
    SELECT user_id, business_date,
           coalesce(sum(amount) FILTER (WHERE kind = 'reward'), 0)::bigint AS rewards,
           coalesce(sum(amount) FILTER (WHERE kind = 'fee'), 0)::bigint AS fees,
           count(*) FILTER (WHERE kind = 'reward')::bigint AS reward_rows,
           count(*) FILTER (WHERE kind = 'fee')::bigint AS fee_rows
    FROM audit_log
    WHERE kind IN ('fee', 'reward')
    GROUP BY user_id, business_date
)
SELECT coalesce(w.user_id, l.user_id)::uuid AS user_id,
       coalesce(w.business_date, l.business_date)::date AS business_date,
       coalesce(w.rewards, 0)::bigint AS stored_rewards,
       coalesce(l.rewards, 0)::bigint AS log_rewards,
       coalesce(w.fees, 0)::bigint AS stored_fees,
       coalesce(l.fees, 0)::bigint AS log_fees,
       coalesce(w.reward_rows, 0)::bigint AS stored_reward_rows,
       coalesce(l.reward_rows, 0)::bigint AS log_reward_rows,
       coalesce(w.fee_rows, 0)::bigint AS stored_fee_rows,
       coalesce(l.fee_rows, 0)::bigint AS log_fee_rows
FROM worker_day_totals w
FULL JOIN log l ON l.user_id = w.user_id AND l.business_date = w.business_date
WHERE (coalesce(w.rewards, 0), coalesce(w.fees, 0), coalesce(w.reward_rows, 0), coalesce(w.fee_rows, 0))
      IS DISTINCT FROM (coalesce(l.rewards, 0), coalesce(l.fees, 0), coalesce(l.reward_rows, 0), coalesce(l.fee_rows, 0))
ORDER BY 2, 1;

-- name: VerifyTopTasks :many
-- Every (slot, reward) whose task_tops row differs from the earliest completion (then
-- lowest id) recomputed from tasks; an empty task id means no row.
WITH want AS (
    SELECT DISTINCT ON (slot, reward) slot, reward, completed_at, id AS task_id
    FROM (SELECT date_bin('15 minutes', completed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS slot,
                 reward, completed_at, id
          FROM tasks WHERE status = 'complete') c
    ORDER BY slot, reward, completed_at, id
)
SELECT coalesce(t.slot, w.slot)::timestamptz AS slot,
       coalesce(t.reward, w.reward)::bigint AS reward,
       coalesce(t.task_id::text, '')::text AS stored_task_id,
       coalesce(w.task_id::text, '')::text AS want_task_id
FROM task_tops t
FULL JOIN want w ON w.slot = t.slot AND w.reward = t.reward
WHERE t.task_id IS DISTINCT FROM w.task_id OR t.completed_at IS DISTINCT FROM w.completed_at
ORDER BY 1, 2;
