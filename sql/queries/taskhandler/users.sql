-- name: UserGetRole :one
SELECT role, active FROM users WHERE id = $1;

-- name: WorkersActive :many
-- Every active worker: what taskhandler picks assignees from at random.
SELECT id FROM users WHERE role = 'worker' AND active ORDER BY id;
