-- name: LogListByUserDay :many
-- One page of a user's rows of a day, oldest first, after the row with id @after_id.
SELECT l.id, l.task_id, coalesce(t.description, '')::text AS task_description,
       l.kind, l.amount, l.business_date, l.created_at
FROM audit_log l
LEFT JOIN tasks t ON t.id = l.task_id
WHERE l.user_id = @user_id AND l.business_date = @day AND l.id > @after_id
ORDER BY l.id
LIMIT @page_limit;
