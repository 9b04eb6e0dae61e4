-- name: TaskGet :one
SELECT * FROM tasks WHERE id = $1;

-- name: TaskList :many
-- One page, newest first, after the (created_at, id) cursor when one is given.
SELECT * FROM tasks
WHERE (sqlc.narg('assignee_id')::uuid IS NULL OR assignee_id = sqlc.narg('assignee_id'))
  AND (sqlc.narg('author_id')::uuid IS NULL OR author_id = sqlc.narg('author_id'))
  AND (sqlc.narg('status')::text IS NULL OR status = sqlc.narg('status'))
  AND (sqlc.narg('after_created_at')::timestamptz IS NULL
       OR (created_at, id) < (sqlc.narg('after_created_at')::timestamptz, sqlc.narg('after_id')::uuid))
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg('page_size');

-- name: TaskListOpenIDs :many
-- Open task ids in id order after a cursor, for reassign-all batches.
SELECT id FROM tasks
WHERE status = 'in_progress' AND id > sqlc.arg('after_id')
ORDER BY id
LIMIT sqlc.arg('batch_size');
