-- +goose Up
-- Read models, so that reading the money of a day costs O(workers + days asked) instead
-- of O(rows of the day). They are kept by triggers, in the transaction (and the
-- statement) that writes the source row, so they cover every writer: taskhandler's one
-- row per event and its one-statement reassign batches, the daily close's payouts, tests
-- and operators writing plain SQL. `ates verify` recomputes both from the audit log and
-- the tasks and compares.

-- One row per worker and business day: the sums and counts of the day's reward and fee
-- rows of audit_log (payouts are not part of them). Company figures sum at most one row
-- per worker; writers of different workers never touch the same row.
CREATE TABLE worker_day_totals (
    user_id       uuid   NOT NULL REFERENCES users (id),
    business_date date   NOT NULL,
    rewards       bigint NOT NULL DEFAULT 0 CHECK (rewards >= 0),
    fees          bigint NOT NULL DEFAULT 0 CHECK (fees <= 0),
    reward_rows   bigint NOT NULL DEFAULT 0 CHECK (reward_rows >= 0),
    fee_rows      bigint NOT NULL DEFAULT 0 CHECK (fee_rows >= 0),
    PRIMARY KEY (user_id, business_date)
);
CREATE INDEX worker_day_totals_date_idx ON worker_day_totals (business_date);

-- +goose StatementBegin
-- Adds a statement's audit rows (new_rows) to the totals and takes back the rows it
-- deleted or changed (old_rows): one upsert per (worker, day) the statement touched, in
-- key order so that concurrent statements lock shared rows in the same order.
CREATE FUNCTION worker_day_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO worker_day_totals AS w (user_id, business_date, rewards, fees, reward_rows, fee_rows)
        SELECT user_id, business_date,
               coalesce(sum(amount) FILTER (WHERE kind = 'reward'), 0),
               coalesce(sum(amount) FILTER (WHERE kind = 'fee'), 0),
               count(*) FILTER (WHERE kind = 'reward'),
               count(*) FILTER (WHERE kind = 'fee')
        FROM new_rows
        WHERE kind IN ('fee', 'reward')
        GROUP BY user_id, business_date
        ORDER BY user_id, business_date
        ON CONFLICT (user_id, business_date) DO UPDATE
        SET rewards = w.rewards + EXCLUDED.rewards,
            fees = w.fees + EXCLUDED.fees,
            reward_rows = w.reward_rows + EXCLUDED.reward_rows,
            fee_rows = w.fee_rows + EXCLUDED.fee_rows;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        -- The rows existed, so their (worker, day) rows exist too.
        UPDATE worker_day_totals w
        SET rewards = w.rewards - o.rewards, fees = w.fees - o.fees,
            reward_rows = w.reward_rows - o.reward_rows, fee_rows = w.fee_rows - o.fee_rows
        FROM (
            SELECT user_id, business_date,
                   coalesce(sum(amount) FILTER (WHERE kind = 'reward'), 0) AS rewards,
                   coalesce(sum(amount) FILTER (WHERE kind = 'fee'), 0) AS fees,
                   count(*) FILTER (WHERE kind = 'reward') AS reward_rows,
                   count(*) FILTER (WHERE kind = 'fee') AS fee_rows
            FROM old_rows
            WHERE kind IN ('fee', 'reward')
            GROUP BY user_id, business_date
        ) o
        WHERE w.user_id = o.user_id AND w.business_date = o.business_date;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_log_totals_insert AFTER INSERT ON audit_log
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION worker_day_totals_apply();
CREATE TRIGGER audit_log_totals_update AFTER UPDATE ON audit_log
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION worker_day_totals_apply();
CREATE TRIGGER audit_log_totals_delete AFTER DELETE ON audit_log
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION worker_day_totals_apply();

INSERT INTO worker_day_totals (user_id, business_date, rewards, fees, reward_rows, fee_rows)
SELECT user_id, business_date,
       coalesce(sum(amount) FILTER (WHERE kind = 'reward'), 0),
       coalesce(sum(amount) FILTER (WHERE kind = 'fee'), 0),
       count(*) FILTER (WHERE kind = 'reward'),
       count(*) FILTER (WHERE kind = 'fee')
FROM audit_log
WHERE kind IN ('fee', 'reward')
GROUP BY user_id, business_date;

-- The earliest completion of each reward value in each 15-minute slot of completed_at
-- (UTC): at most 21 rows a slot. GetTopTask asks for business days as instants, from a
-- midnight to a midnight in the business time zone; every zone's offset is a whole
-- number of quarter hours, so a range of days is a range of whole slots, and the top
-- task of the range (highest reward, earliest completion, lowest id) is among these
-- rows. Slots rather than days keep the table free of the time zone, which the
-- database does not know. A completion writes here only while it can still win its
-- (slot, reward): once an earlier one is committed, it reads and leaves, taking no lock.
CREATE TABLE task_tops (
    slot         timestamptz NOT NULL,
    reward       bigint      NOT NULL,
    completed_at timestamptz NOT NULL,
    task_id      uuid        NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (slot, reward),
    CHECK (slot = date_bin('15 minutes', completed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'))
);
-- The read walks the rewards from the highest down and takes the first in range.
CREATE INDEX task_tops_reward_idx ON task_tops (reward, completed_at, task_id);

-- +goose StatementBegin
CREATE FUNCTION task_tops_offer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s timestamptz := date_bin('15 minutes', NEW.completed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00');
BEGIN
    IF EXISTS (SELECT 1 FROM task_tops t
               WHERE t.slot = s AND t.reward = NEW.reward
                 AND (t.completed_at, t.task_id) <= (NEW.completed_at, NEW.id)) THEN
        RETURN NULL;
    END IF;
    INSERT INTO task_tops AS t (slot, reward, completed_at, task_id)
    VALUES (s, NEW.reward, NEW.completed_at, NEW.id)
    ON CONFLICT (slot, reward) DO UPDATE
    SET completed_at = EXCLUDED.completed_at, task_id = EXCLUDED.task_id
    WHERE (EXCLUDED.completed_at, EXCLUDED.task_id) < (t.completed_at, t.task_id);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER tasks_top_complete AFTER UPDATE ON tasks
    FOR EACH ROW WHEN (NEW.status = 'complete' AND OLD.status <> 'complete')
    EXECUTE FUNCTION task_tops_offer();
CREATE TRIGGER tasks_top_insert AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.status = 'complete')
    EXECUTE FUNCTION task_tops_offer();

INSERT INTO task_tops (slot, reward, completed_at, task_id)
SELECT DISTINCT ON (slot, reward) slot, reward, completed_at, id
FROM (SELECT date_bin('15 minutes', completed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS slot,
             reward, completed_at, id
      FROM tasks WHERE status = 'complete') c
ORDER BY slot, reward, completed_at, id;

-- GetTopTask reads task_tops now; nothing else looks up completed tasks by completion
-- time, so the index would only cost every completion a write.
DROP INDEX tasks_completed_at_idx;

-- +goose Down
CREATE INDEX tasks_completed_at_idx ON tasks (completed_at, reward DESC) WHERE status = 'complete';
DROP TRIGGER tasks_top_insert ON tasks;
DROP TRIGGER tasks_top_complete ON tasks;
DROP FUNCTION task_tops_offer();
DROP TABLE task_tops;
DROP TRIGGER audit_log_totals_delete ON audit_log;
DROP TRIGGER audit_log_totals_update ON audit_log;
DROP TRIGGER audit_log_totals_insert ON audit_log;
DROP FUNCTION worker_day_totals_apply();
DROP TABLE worker_day_totals;
