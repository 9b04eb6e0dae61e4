-- name: TokenInsert :exec
-- created_at is the clock at the insert, not the transaction's start: a login that
-- waited for another one's user lock is the newer of the two.
INSERT INTO tokens (token_hash, user_id, expires_at, created_at)
VALUES ($1, $2, $3, clock_timestamp());

-- name: TokenGetUser :one
-- The active user behind a token that has not expired at $2.
SELECT sqlc.embed(u)
FROM tokens t
JOIN users u ON u.id = t.user_id
WHERE t.token_hash = $1 AND t.expires_at > $2 AND u.active;

-- name: TokenDeleteExpired :execrows
DELETE FROM tokens WHERE expires_at <= $1;

-- name: TokenDeleteAllButNewest :execrows
-- Deletes the user's tokens except the @keep newest unexpired ones (expired ones go too).
-- Run under the user's row lock (UserLockForLogin), so logins cannot both keep the same
-- old tokens.
DELETE FROM tokens t
WHERE t.user_id = @user_id
  AND t.token_hash NOT IN (
    SELECT k.token_hash FROM tokens k
    WHERE k.user_id = @user_id AND k.expires_at > @now
    ORDER BY k.created_at DESC, k.token_hash DESC
    LIMIT @keep
  );

-- name: TokenDelete :execrows
-- Revokes one token.
DELETE FROM tokens WHERE token_hash = $1;

-- name: TokenDeleteByUser :one
-- Revokes every token of a user and counts those that had not expired at @now.
WITH deleted AS (
    DELETE FROM tokens WHERE user_id = @user_id RETURNING expires_at
)
SELECT count(*) FILTER (WHERE expires_at > @now) FROM deleted;
