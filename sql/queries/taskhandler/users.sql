-- name: UserGetRole :one
SELECT role, active FROM users WHERE id = $1;
