-- name: UserGetRole :one
SELECT role, active FROM users WHERE id = $1;

-- name: UserCountActiveWorkers :one
SELECT count(*) FROM users WHERE role = 'worker' AND active;
