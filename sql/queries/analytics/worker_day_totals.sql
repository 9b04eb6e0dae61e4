-- name: TotalEarningsByDay :many
-- The company's result per day with activity in [from, to]: -(rewards + fees).
SELECT business_date,
       (-coalesce(sum(rewards + fees), 0))::bigint AS earnings
FROM worker_day_totals
WHERE business_date BETWEEN @from_day::date AND @to_day::date
GROUP BY business_date
ORDER BY business_date;

-- name: WorkersBelowZero :one
-- The active workers, and how many of them end the open day @day below zero: the carry
-- of the last closed day @after rolled through every open day since as the daily close
-- will (ledger.Open: a positive closing is paid out, a negative one carries on, so
-- opening = least(opening + s, 0) day by day, s being the day's rewards + fees). Its
-- closed form, with s_1..s_n the open days before @day: the opening of @day is the
-- least of 0, each suffix sum s_k + ... + s_n, and carry + s_1 + ... + s_n (a carry is
-- never positive); the closing adds @day's own s. One row per worker and open day is
-- read, in the database; nothing per worker leaves it.
WITH before AS (
    SELECT user_id, rewards + fees AS s,
           sum(rewards + fees) OVER (PARTITION BY user_id ORDER BY business_date DESC) AS suffix
    FROM worker_day_totals
    WHERE business_date > @after::date AND business_date < @day::date
),
opening AS (
    SELECT user_id, min(suffix) AS low, sum(s) AS total
    FROM before
    GROUP BY user_id
)
SELECT count(*)::bigint AS workers,
       count(*) FILTER (WHERE
           least(0, coalesce(o.low, 0), coalesce(b.carry, 0) + coalesce(o.total, 0))
           + coalesce(d.rewards + d.fees, 0) < 0)::bigint AS negative
FROM users u
LEFT JOIN opening o ON o.user_id = u.id
LEFT JOIN balances b ON b.user_id = u.id AND b.business_date = @after::date
LEFT JOIN worker_day_totals d ON d.user_id = u.id AND d.business_date = @day::date
WHERE u.role = 'worker' AND u.active;

-- name: WorkersBelowZeroList :many
-- The active workers who end the open day @day below zero, lowest first, at most
-- @max_rows: the closing of WorkersBelowZero, per worker.
WITH before AS (
    SELECT user_id, rewards + fees AS s,
           sum(rewards + fees) OVER (PARTITION BY user_id ORDER BY business_date DESC) AS suffix
    FROM worker_day_totals
    WHERE business_date > @after::date AND business_date < @day::date
),
opening AS (
    SELECT user_id, min(suffix) AS low, sum(s) AS total
    FROM before
    GROUP BY user_id
),
closing AS (
    SELECT u.id, u.name, u.email,
           (least(0, coalesce(o.low, 0), coalesce(b.carry, 0) + coalesce(o.total, 0))
            + coalesce(d.rewards + d.fees, 0))::bigint AS closing
    FROM users u
    LEFT JOIN opening o ON o.user_id = u.id
    LEFT JOIN balances b ON b.user_id = u.id AND b.business_date = @after::date
    LEFT JOIN worker_day_totals d ON d.user_id = u.id AND d.business_date = @day::date
    WHERE u.role = 'worker' AND u.active
)
SELECT id, name, email, closing
FROM closing
WHERE closing < 0
ORDER BY closing, id
LIMIT @max_rows;
