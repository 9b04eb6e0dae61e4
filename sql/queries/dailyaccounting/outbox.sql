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

-- name: OutboxBacklog :one
-- How many rows wait for the relay, and how long the oldest has waited (0 when none).
SELECT count(*)::bigint AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_seconds
FROM outbox
WHERE sent_at IS NULL;
