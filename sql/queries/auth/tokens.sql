-- name: TokenInsert :exec
INSERT INTO tokens (token_hash, user_id, expires_at)
VALUES ($1, $2, $3);

-- name: TokenGetUser :one
-- The active user behind a token that has not expired at $2.
SELECT sqlc.embed(u)
FROM tokens t
JOIN users u ON u.id = t.user_id
WHERE t.token_hash = $1 AND t.expires_at > $2 AND u.active;

-- name: TokenDeleteExpired :execrows
DELETE FROM tokens WHERE expires_at <= $1;
