-- name: UserListWorkerIDs :many
SELECT id FROM users WHERE role = 'worker' AND active ORDER BY id;
