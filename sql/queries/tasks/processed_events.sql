-- name: ProcessedEventGet :one
SELECT outcome, reason FROM processed_events WHERE consumer = $1 AND event_id = $2;

-- name: ProcessedEventCountFees :one
-- How many fee rows the given events wrote: the tasks a reassign-all actually moved.
SELECT count(*) FROM audit_log WHERE kind = 'fee' AND event_id = ANY(sqlc.arg('event_ids')::uuid[]);
