-- Every query the fault suite runs against a scenario's database, in one place: its own
-- bookkeeping, the probes it polls while it waits, and the invariants it checks once a
-- scenario has recovered.
--
-- Each query starts with "-- name: NAME". An invariant also has "-- check: COLUMN",
-- where COLUMN is the table column its rows count towards (lost or duplicated) or
-- "violation"; it returns one row per violation: (what text, n bigint), n being how
-- many lost or extra applications the row stands for.
--
-- faulttest.calls holds what the load generator asked and what the API answered, one
-- row per logical write: a create is known by its description (unique per request, and
-- kept by retries), a complete by its task id.

-- name: setup
CREATE SCHEMA IF NOT EXISTS faulttest;
CREATE TABLE IF NOT EXISTS faulttest.calls (
    kind         text    NOT NULL CHECK (kind IN ('create', 'complete')),
    key          text    NOT NULL,
    request_id   text    NOT NULL,
    task_id      uuid,
    acknowledged boolean NOT NULL,
    code         text    NOT NULL,
    message      text    NOT NULL,
    attempts     integer NOT NULL
);
TRUNCATE faulttest.calls;

-- name: requests
-- Each logical write once (a complete retried by the load is one request), whether any
-- attempt was acknowledged and whether its effect is in the database.
WITH r AS (
    SELECT c.kind, c.key, bool_or(c.acknowledged) AS acked
    FROM faulttest.calls c
    GROUP BY c.kind, c.key
), applied AS (
    SELECT r.*,
           CASE r.kind
               WHEN 'create' THEN EXISTS (SELECT 1 FROM tasks t WHERE t.description = r.key)
               ELSE EXISTS (SELECT 1 FROM tasks t WHERE t.id = r.key::uuid AND t.status = 'complete')
           END AS applied
    FROM r
)
SELECT count(*),
       count(*) FILTER (WHERE acked),
       count(*) FILTER (WHERE applied),
       count(*) FILTER (WHERE applied AND NOT acked)
FROM applied;

-- name: answers
-- How the API answered, by kind and code, with one of its messages, and how many of the
-- refused writes took effect anyway (no call for the same request was acknowledged, yet
-- its effect is in the database).
SELECT kind, code, min(message), count(*), count(*) FILTER (WHERE applied AND NOT acked)
FROM (
    SELECT c.kind, c.code, c.message,
           EXISTS (SELECT 1 FROM faulttest.calls o WHERE o.kind = c.kind AND o.key = c.key AND o.acknowledged) AS acked,
           CASE c.kind
               WHEN 'create' THEN EXISTS (SELECT 1 FROM tasks t WHERE t.description = c.key)
               ELSE EXISTS (SELECT 1 FROM tasks t WHERE t.id = c.key::uuid AND t.status = 'complete')
           END AS applied
    FROM faulttest.calls c
) a
GROUP BY kind, code
ORDER BY kind, count(*) DESC;

-- name: lost_creates
-- check: lost
-- An acknowledged create must be the task its answer named.
SELECT 'create "' || c.key || '" was acknowledged as task ' || coalesce(c.task_id::text, '?') || ', which does not exist', 1::bigint
FROM faulttest.calls c
WHERE c.kind = 'create' AND c.acknowledged
  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = c.task_id AND t.description = c.key);

-- name: lost_completes
-- check: lost
-- An acknowledged complete must leave its task complete.
SELECT 'complete of task ' || c.key || ' was acknowledged, but the task is ' || coalesce(t.status::text, 'missing'), 1::bigint
FROM (SELECT DISTINCT key FROM faulttest.calls WHERE kind = 'complete' AND acknowledged) c
LEFT JOIN tasks t ON t.id = c.key::uuid
WHERE t.status IS DISTINCT FROM 'complete';

-- name: duplicate_tasks
-- check: duplicated
-- One create request (retries carry the same description and request_id) is one task.
SELECT 'create "' || r.key || '"' || coalesce(' (request_id ' || nullif(r.request_id, '') || ')', '')
           || ' became ' || count(*) || ' tasks',
       count(*) - 1
FROM (SELECT key, max(request_id) AS request_id FROM faulttest.calls WHERE kind = 'create' GROUP BY key) r
JOIN tasks t ON t.description = r.key
GROUP BY r.key, r.request_id
HAVING count(*) > 1;

-- name: duplicate_rewards
-- check: duplicated
-- A task earns its reward at most once.
SELECT 'task ' || task_id || ' has ' || count(*) || ' reward rows', count(*) - 1
FROM audit_log
WHERE kind = 'reward'
GROUP BY task_id
HAVING count(*) > 1;

-- name: duplicate_fees
-- check: duplicated
-- The load never reassigns, so a task is charged its fee exactly once.
SELECT 'task ' || task_id || ' has ' || count(*) || ' fee rows', count(*) - 1
FROM audit_log
WHERE kind = 'fee'
GROUP BY task_id
HAVING count(*) > 1;

-- name: events_applied_twice
-- check: duplicated
-- No event is applied twice (the unique keys say so; this says it if they ever go).
SELECT 'event ' || event_id || ' wrote ' || count(*) || ' ' || kind || ' rows for task ' || coalesce(task_id::text, '-'),
       count(*) - 1
FROM audit_log
GROUP BY event_id, kind, task_id
HAVING count(*) > 1
UNION ALL
SELECT 'event ' || event_id || ' was processed ' || count(*) || ' times by ' || consumer, count(*) - 1
FROM processed_events
GROUP BY consumer, event_id
HAVING count(*) > 1;

-- name: fee_mismatch
-- check: violation
-- Every task was charged, to its assignee, exactly its fee.
SELECT 'task ' || t.id || ' has ' || count(l.id) || ' fee rows for ' || t.fee || ' to its assignee '
           || t.assignee_id || ': ' || coalesce(string_agg(l.amount || ' to ' || l.user_id, ', '), 'none'),
       1::bigint
FROM tasks t
LEFT JOIN audit_log l ON l.task_id = t.id AND l.kind = 'fee'
GROUP BY t.id
HAVING count(l.id) = 0 OR bool_or(l.user_id <> t.assignee_id OR l.amount <> t.fee);

-- name: fee_after_completion
-- check: violation
-- Nobody is charged for a task after it was completed.
SELECT 'task ' || t.id || ' was charged a fee at ' || l.created_at || ', after its completion at ' || t.completed_at,
       1::bigint
FROM tasks t
JOIN audit_log l ON l.task_id = t.id AND l.kind = 'fee'
WHERE t.completed_at IS NOT NULL AND l.created_at > t.completed_at;

-- name: reward_mismatch
-- check: violation
-- A completed task earned its reward, to the worker who held it when it was completed;
-- an open one earned nothing.
SELECT 'task ' || t.id || ' (' || t.status || ', reward ' || t.reward || ', assignee ' || t.assignee_id || ') has rewards: '
           || coalesce(string_agg(l.amount || ' to ' || l.user_id, ', '), 'none'),
       1::bigint
FROM tasks t
LEFT JOIN audit_log l ON l.task_id = t.id AND l.kind = 'reward'
GROUP BY t.id
HAVING (t.status = 'complete' AND count(l.id) = 0)
    OR (t.status <> 'complete' AND count(l.id) > 0)
    OR bool_or(l.user_id <> t.assignee_id OR l.amount <> t.reward);

-- name: closed_day_balances
-- check: violation
-- For each worker and closed day: opening = the previous day's carry, rewards and fees =
-- that day's rows; and a closed day has one balance row per worker it counted.
SELECT 'balance of ' || b.user_id || ' on ' || b.business_date || ': opening ' || b.opening || ' (carry '
           || coalesce(p.carry, 0) || '), rewards ' || b.rewards || ' (rows ' || s.rewards || '), fees '
           || b.fees || ' (rows ' || s.fees || ')',
       1::bigint
FROM balances b
LEFT JOIN balances p ON p.user_id = b.user_id AND p.business_date = b.business_date - 1
CROSS JOIN LATERAL (
    SELECT coalesce(sum(amount) FILTER (WHERE kind = 'reward'), 0) AS rewards,
           coalesce(sum(amount) FILTER (WHERE kind = 'fee'), 0) AS fees
    FROM audit_log l
    WHERE l.user_id = b.user_id AND l.business_date = b.business_date
) s
WHERE b.opening <> coalesce(p.carry, 0) OR b.rewards <> s.rewards OR b.fees <> s.fees
UNION ALL
SELECT 'day ' || d.business_date || ' counted ' || d.workers || ' workers but has ' || count(b.user_id) || ' balance rows',
       1::bigint
FROM closed_days d
LEFT JOIN balances b ON b.business_date = d.business_date
GROUP BY d.business_date, d.workers
HAVING count(b.user_id) <> d.workers;

-- name: closed_day_payouts
-- check: violation
-- A positive closing is paid out once, as one payout row of −closing on that day.
SELECT 'balance of ' || b.user_id || ' on ' || b.business_date || ' pays ' || b.payout || ' but has '
           || count(l.id) || ' payout rows summing to ' || coalesce(sum(l.amount), 0),
       1::bigint
FROM balances b
LEFT JOIN audit_log l ON l.user_id = b.user_id AND l.business_date = b.business_date AND l.kind = 'payout'
GROUP BY b.user_id, b.business_date, b.payout
HAVING count(l.id) <> (b.payout > 0)::int OR coalesce(sum(l.amount), 0) <> -b.payout;

-- name: closed_day_mails
-- check: violation
-- mailsender recorded one mail per worker of every closed day.
SELECT 'day ' || d.business_date || ' closed for ' || d.workers || ' workers, ' || count(m.event_id) || ' mails recorded',
       1::bigint
FROM closed_days d
LEFT JOIN sent_mails m ON m.business_date = d.business_date
GROUP BY d.business_date, d.workers
HAVING count(m.event_id) <> d.workers;

-- name: probe_progress
-- Changes while any consumer still works: events applied, tasks, mails, outbox rows sent.
SELECT (SELECT count(*) FROM processed_events)
     + (SELECT count(*) FROM tasks)
     + (SELECT count(*) FROM sent_mails)
     + (SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL);

-- name: probe_lost
-- How many acknowledged writes are not applied (yet).
SELECT (SELECT count(*) FROM faulttest.calls c
        WHERE c.kind = 'create' AND c.acknowledged
          AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = c.task_id))
     + (SELECT count(DISTINCT c.key) FROM faulttest.calls c
        WHERE c.kind = 'complete' AND c.acknowledged
          AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = c.key::uuid AND t.status = 'complete'));

-- name: probe_mail_backlog
-- Mails of closed days not sent yet: outbox rows the relay has not published, and
-- closed workers without a sent_mails row.
SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL)
     + (SELECT coalesce(sum(d.workers), 0) FROM closed_days d)
     - (SELECT count(*) FROM sent_mails m JOIN closed_days d ON d.business_date = m.business_date);

-- name: probe_tasks_exist
-- How many of the task ids $1 exist.
SELECT count(*) FROM tasks WHERE id = ANY ($1::uuid[]);

-- name: probe_tasks_described
-- Tasks whose description starts with $1.
SELECT count(*) FROM tasks WHERE starts_with(description, $1);

-- name: probe_fees_described
-- Fee rows of the tasks whose description starts with $1.
SELECT count(*) FROM audit_log l JOIN tasks t ON t.id = l.task_id
WHERE l.kind = 'fee' AND starts_with(t.description, $1);

-- name: probe_processed
-- Events taskhandler has applied or rejected.
SELECT count(*) FROM processed_events WHERE consumer = 'taskhandler';

-- name: probe_close_lock
-- Whether a daily close holds its advisory lock in this database (is mid-transaction).
SELECT count(*)
FROM pg_locks l
JOIN pg_database d ON d.oid = l.database
WHERE l.locktype = 'advisory' AND l.mode = 'ExclusiveLock' AND l.granted
  AND d.datname = current_database();

-- name: probe_closed_days
-- The closed days and how many workers each counted.
SELECT business_date::text, workers FROM closed_days ORDER BY business_date;

-- name: probe_worker_days
-- The business days on which worker $1 has fee or reward rows, with their sums.
SELECT business_date::text,
       coalesce(sum(amount) FILTER (WHERE kind = 'reward'), 0)::bigint,
       coalesce(sum(amount) FILTER (WHERE kind = 'fee'), 0)::bigint
FROM audit_log
WHERE user_id = $1 AND kind IN ('fee', 'reward')
GROUP BY business_date
ORDER BY business_date;
