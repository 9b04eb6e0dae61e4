-- name: TaskTopCompleted :one
-- The completed task with the highest reward completed in [from, until); the earliest
-- completion (then the lowest id) wins a tie. From task_tops, the best completion per
-- reward and 15-minute slot: the rewards are walked from the highest down (one index
-- probe each), and the first with a completion in range holds the answer. from and
-- until are midnights of the business time zone, so they bound whole slots.
WITH RECURSIVE rewards AS (
    SELECT max(reward) AS reward FROM task_tops
    UNION ALL
    SELECT (SELECT max(t.reward) FROM task_tops t WHERE t.reward < r.reward)
    FROM rewards r
    WHERE r.reward IS NOT NULL
), best AS (
    SELECT b.task_id
    FROM rewards r
    CROSS JOIN LATERAL (
        SELECT t.task_id FROM task_tops t
        WHERE t.reward = r.reward
          AND t.completed_at >= @from_time::timestamptz AND t.completed_at < @until_time::timestamptz
        ORDER BY t.completed_at, t.task_id
        LIMIT 1
    ) b
    LIMIT 1
)
SELECT sqlc.embed(tasks), u.name AS assignee_name
FROM tasks JOIN users u ON u.id = tasks.assignee_id
WHERE tasks.id = (SELECT task_id FROM best);
