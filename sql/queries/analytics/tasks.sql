-- name: TaskTopCompleted :one
-- The completed task with the highest reward completed in [from, until); the earliest
-- completion wins a tie.
SELECT * FROM tasks
WHERE status = 'complete' AND completed_at >= @from_time::timestamptz AND completed_at < @until_time::timestamptz
ORDER BY reward DESC, completed_at, id
LIMIT 1;
