-- name: ProcessedEventClaimMany :many
-- Claims a batch of events for this consumer at once; it returns the ids claimed now,
-- the others were applied before (an id given twice is claimed once). A concurrent
-- duplicate waits here until the first transaction ends.
INSERT INTO processed_events (consumer, event_id, outcome)
SELECT sqlc.arg('consumer'), e, 'applied'
FROM unnest(sqlc.arg('event_ids')::uuid[]) AS e
ON CONFLICT DO NOTHING
RETURNING event_id;

-- name: ProcessedEventReject :exec
UPDATE processed_events SET outcome = 'rejected', reason = $3
WHERE consumer = $1 AND event_id = $2;

-- name: ProcessedEventNotifyMany :exec
-- Wakes API calls waiting for these events; delivered when the transaction commits. The
-- channel is events.ProcessedChannel, which the tasks API listens on.
SELECT pg_notify(sqlc.arg('channel')::text, e::text) FROM unnest(sqlc.arg('event_ids')::uuid[]) AS e;

-- name: CloseLockShared :exec
-- Holds off a daily close while this event is applied (the close takes the same lock
-- exclusively), so a money row stamped with day D is either part of D's close or was
-- stamped after it, with a later day.
SELECT pg_advisory_xact_lock_shared(daily_close_lock_key());
