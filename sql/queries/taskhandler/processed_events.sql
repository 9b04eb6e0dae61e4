-- name: ProcessedEventClaim :execrows
-- Claims an event for this consumer; 0 rows means it was applied before. A concurrent
-- duplicate waits here until the first transaction ends.
INSERT INTO processed_events (consumer, event_id, outcome)
VALUES ($1, $2, 'applied')
ON CONFLICT DO NOTHING;

-- name: ProcessedEventReject :exec
UPDATE processed_events SET outcome = 'rejected', reason = $3
WHERE consumer = $1 AND event_id = $2;

-- name: ProcessedEventNotify :exec
-- Wakes API calls waiting for this event; delivered when the transaction commits.
SELECT pg_notify('ates_processed', sqlc.arg('event_id')::text);

-- name: CloseLockShared :exec
-- Holds off a daily close while this event is applied (the close takes the same lock
-- exclusively), so a money row stamped with day D is either part of D's close or was
-- stamped after it, with a later day.
SELECT pg_advisory_xact_lock_shared(hashtext('ates.dailyaccounting.close'));
