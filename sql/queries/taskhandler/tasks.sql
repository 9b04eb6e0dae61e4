-- name: TaskGet :one
SELECT * FROM tasks WHERE id = $1;

-- name: TaskCreate :one
-- Stores a new task assigned to the given worker (picked at random by the caller from
-- the active workers), if that worker is still active; no row otherwise.
INSERT INTO tasks (id, author_id, assignee_id, description, reward, fee, created_at, updated_at)
SELECT sqlc.arg('id'), sqlc.arg('author_id'), u.id, sqlc.arg('description'), sqlc.arg('reward'), sqlc.arg('fee'), sqlc.arg('now'), sqlc.arg('now')
FROM users u
WHERE u.id = sqlc.arg('assignee_id') AND u.role = 'worker' AND u.active
RETURNING *;

-- name: TaskComplete :one
-- Completes the task only if it is still open and still held by the worker: whichever
-- of a completion and a reassignment commits first decides.
UPDATE tasks SET status = 'complete', completed_at = sqlc.arg('now')::timestamptz, updated_at = sqlc.arg('now')
WHERE id = sqlc.arg('id') AND status = 'in_progress' AND assignee_id = sqlc.arg('worker_id')
RETURNING *;

-- name: TaskAssign :one
-- Gives an open task to the given worker if that worker is active (the caller picks a
-- random one when the event names none); no row otherwise. A worker picked at random
-- may be the one who holds the task (a reassignment like any other); a worker named who
-- holds it already gets no row either: that changes nothing, so it charges no fee.
UPDATE tasks SET assignee_id = u.id, updated_at = sqlc.arg('now')
FROM users u
WHERE tasks.id = sqlc.arg('id') AND tasks.status = 'in_progress'
  AND u.id = sqlc.arg('assignee_id') AND u.role = 'worker' AND u.active
  AND (sqlc.arg('picked_at_random')::boolean OR tasks.assignee_id <> u.id)
RETURNING tasks.*;

-- name: TasksReassign :many
-- Gives each still-open task of the batch to a random active worker and charges each new
-- assignee the task's fee, in one statement. Rows are locked in id order so concurrent
-- batches cannot deadlock; a task completed meanwhile is skipped.
WITH workers AS (
    SELECT id, (row_number() OVER (ORDER BY id)) - 1 AS n
    FROM users WHERE role = 'worker' AND active
),
picked AS (
    SELECT t.id, floor(random() * (SELECT count(*) FROM workers))::bigint AS n
    FROM tasks t
    WHERE t.id = ANY(sqlc.arg('task_ids')::uuid[]) AND t.status = 'in_progress'
      -- One reassign-all moves a task once, even through other batches of a retry (the
      -- check runs again on the locked row, so concurrent batches cannot both move it).
      AND t.reassign_op IS DISTINCT FROM sqlc.arg('operation_id')::uuid
    ORDER BY t.id
    FOR UPDATE OF t
),
moved AS (
    UPDATE tasks SET assignee_id = w.id, updated_at = sqlc.arg('now'), reassign_op = sqlc.arg('operation_id')
    FROM picked p JOIN workers w ON w.n = p.n
    WHERE tasks.id = p.id AND tasks.status = 'in_progress'
    RETURNING tasks.id, tasks.assignee_id, tasks.fee
)
INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id, created_at)
SELECT m.assignee_id, m.id, 'fee', m.fee, sqlc.arg('business_date'), sqlc.arg('event_id'), sqlc.arg('now')
FROM moved m
RETURNING task_id, user_id;
