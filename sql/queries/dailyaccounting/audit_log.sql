-- name: LogFirstDay :one
-- The earliest business day with activity.
SELECT business_date FROM audit_log
ORDER BY business_date
LIMIT 1;

-- name: LogInsertPayouts :copyfrom
INSERT INTO audit_log (user_id, kind, amount, business_date, event_id)
VALUES ($1, $2, $3, $4, $5);
