-- name: LogInsert :exec
INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7);
