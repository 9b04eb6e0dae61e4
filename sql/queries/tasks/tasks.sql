-- name: TaskGet :one
-- The task with its assignee's name (the API shows both).
SELECT sqlc.embed(t), u.name AS assignee_name
FROM tasks t JOIN users u ON u.id = t.assignee_id
WHERE t.id = $1;

-- name: TaskList :many
-- One page, newest first, after the (created_at, id) cursor when one is given, each task
-- with its assignee's name.
SELECT sqlc.embed(t), u.name AS assignee_name
FROM tasks t JOIN users u ON u.id = t.assignee_id
WHERE (sqlc.narg('assignee_id')::uuid IS NULL OR t.assignee_id = sqlc.narg('assignee_id'))
  AND (sqlc.narg('author_id')::uuid IS NULL OR t.author_id = sqlc.narg('author_id'))
  AND (sqlc.narg('status')::task_status IS NULL OR t.status = sqlc.narg('status')::task_status)
  AND (sqlc.narg('after_created_at')::timestamptz IS NULL
       OR (t.created_at, t.id) < (sqlc.narg('after_created_at')::timestamptz, sqlc.narg('after_id')::uuid))
ORDER BY t.created_at DESC, t.id DESC
LIMIT sqlc.arg('page_size');

-- name: TaskListOpenIDs :many
-- Open task ids in id order after a cursor, for reassign-all batches.
SELECT id FROM tasks
WHERE status = 'in_progress' AND id > sqlc.arg('after_id')
ORDER BY id
LIMIT sqlc.arg('batch_size');
