-- name: UserCountWorkers :one
SELECT count(*) FROM users WHERE role = 'worker' AND active;
