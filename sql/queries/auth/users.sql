-- name: UserInsert :one
INSERT INTO users (id, name, email, role, photo_hash_mac)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: UserGetByPhotoHashMAC :one
SELECT * FROM users
WHERE photo_hash_mac = $1 AND active;

-- name: UserGet :one
SELECT * FROM users WHERE id = $1;
