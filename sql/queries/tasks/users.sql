-- name: UserGetRole :one
SELECT role, active FROM users WHERE id = $1;

-- name: UserActiveWorkerExists :one
-- Whether a task can be assigned at all; stops at the first worker (a partial index).
SELECT EXISTS (SELECT 1 FROM users WHERE role = 'worker' AND active);
