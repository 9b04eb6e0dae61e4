-- name: OutboxInsert :copyfrom
INSERT INTO outbox (event_id, routing_key, message_type, payload)
VALUES ($1, $2, $3, $4);

-- name: OutboxListUnsent :many
-- The oldest unsent rows, locked so that another relay skips them meanwhile.
SELECT id, event_id, routing_key, message_type, payload
FROM outbox
WHERE sent_at IS NULL
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: OutboxMarkSent :exec
UPDATE outbox SET sent_at = now()
WHERE id = ANY(@ids::bigint[]);
