-- name: TokenInsert :exec
INSERT INTO tokens (token_hash, user_id, expires_at)
VALUES ($1, $2, $3);

-- name: TokenGetUser :one
-- The user behind an unexpired token of an active user.
SELECT u.id, u.name, u.email, u.role, u.created_at
FROM tokens t
JOIN users u ON u.id = t.user_id
WHERE t.token_hash = $1 AND t.expires_at > now() AND u.active;

-- name: TokenDeleteExpired :execrows
DELETE FROM tokens WHERE expires_at <= $1;
