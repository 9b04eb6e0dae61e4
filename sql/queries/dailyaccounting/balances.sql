-- name: BalanceCloseDay :many
-- Writes the balance row of @day for every worker, and for anyone else with a row that
-- day or a balance the day before, so no money is ever left out of a close:
-- opening = carry of the day before (0 if none), closing = opening + rewards + fees,
-- payout = max(closing, 0), carry = min(closing, 0). Returns the rows with each user's
-- name and email, for the summary mail.
WITH sums AS (
    -- The day's reward and fee rows, summed per worker as they were written.
    SELECT user_id, rewards, fees
    FROM worker_day_totals
    WHERE business_date = @day::date
), day AS (
    SELECT u.id AS user_id,
           coalesce(p.carry, 0) AS opening,
           coalesce(s.rewards, 0) AS rewards,
           coalesce(s.fees, 0) AS fees
    FROM users u
    LEFT JOIN sums s ON s.user_id = u.id
    LEFT JOIN balances p ON p.user_id = u.id AND p.business_date = @prev_day::date
    WHERE u.role = 'worker' OR s.user_id IS NOT NULL OR p.user_id IS NOT NULL
), ins AS (
    INSERT INTO balances (user_id, business_date, opening, rewards, fees, closing, payout, carry)
    SELECT user_id, @day::date, opening, rewards, fees,
           opening + rewards + fees,
           greatest(opening + rewards + fees, 0),
           least(opening + rewards + fees, 0)
    FROM day
    RETURNING *
)
SELECT ins.user_id, ins.opening, ins.rewards, ins.fees, ins.closing, ins.payout, ins.carry,
       u.name, u.email
FROM ins
JOIN users u ON u.id = ins.user_id
ORDER BY ins.user_id;
