-- name: UserInsert :one
INSERT INTO users (id, name, email, role, photo_hash_mac)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: UserGet :one
SELECT * FROM users WHERE id = $1;

-- name: UserLockForLogin :one
-- The active user with a photo hash MAC, locked until the login's transaction ends so
-- that concurrent logins of one user trim its tokens one after the other. NO KEY UPDATE
-- does not block other tables' foreign-key checks against the user.
SELECT * FROM users
WHERE photo_hash_mac = $1 AND active
FOR NO KEY UPDATE;
