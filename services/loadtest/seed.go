//go:build loadtest

package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ates/ates/services/internal/events"
)

// SeedSize is how big a database Seed builds.
type SeedSize struct {
	Workers int `json:"workers"` // new active workers
	Tasks   int `json:"tasks"`   // new tasks, spread evenly over the days
	Days    int `json:"days"`    // the last Days business days, today included
}

// SeedStats is what Seed wrote and how long it took.
type SeedStats struct {
	Tasks, LogRows, Events int64
	Insert                 time.Duration // the one transaction that writes every row
	Vacuum                 time.Duration // VACUUM ANALYZE of the tables it wrote
	Steps                  []string      // each statement of the transaction and its time
}

// Seed adds size.Workers workers and size.Tasks tasks to a migrated aTES database by a
// few set-based statements in one transaction, writing the rows the write path would
// have written had those workers registered and those tasks been created (by author, an
// admin or manager) and three in four of them completed, at the times Seed gives them:
//
//   - users: role worker, active, a unique name, e-mail and photo-hash MAC, registered
//     an hour before the first day;
//   - tasks: assigned to a random seeded worker (taskhandler picks a random active
//     worker), reward 20..40 and fee -20..-10 drawn as the tasks API draws them,
//     created_at spread evenly over the task's day, updated_at = completed_at (a random
//     later instant of the same day) for the complete ones and created_at for the others;
//   - audit_log: a fee row per task at its creation and a reward row per completed task
//     at its completion, each with the business date of that instant in tz and the id of
//     the event that caused it, in time order (so ids grow with time, as when written
//     live);
//   - processed_events: taskhandler's row for each of those task_create and
//     task_complete events, applied, at the instant it was applied;
//   - the read models, worker_day_totals and task_tops, as their triggers would leave
//     them.
//
// Row by row, the triggers, foreign-key checks and index inserts would take minutes for
// a million tasks, so the transaction turns the triggers and checks off
// (session_replication_role = replica, which needs a superuser, as the test database's
// postgres is) and drops the plain indexes of tasks, audit_log and processed_events,
// building them again from their own definitions once the rows are in; it writes ids it
// just created,
// checks itself what keep_closed_days would (no seeded day may be closed), and adds the
// seeded rows to the read models with the statements the read-model migration fills
// them with, merged as the triggers merge (sums added; an earlier completion wins its
// slot and reward). `ates verify` recomputes both read models to check; the harness runs
// it after every seeding.
//
// Days are spread over the last size.Days business days in tz, today's tasks between
// its midnight and now; no day is closed, which is what the write path leaves until the
// daily close runs (the harness runs with the scheduled close off). It returns once the
// tables are vacuumed and analysed, as autovacuum would leave them on a live database.
func Seed(ctx context.Context, pool *pgxpool.Pool, size SeedSize, author uuid.UUID, tz string, now time.Time) (SeedStats, error) {
	var st SeedStats
	if size.Workers < 1 || size.Tasks < 1 || size.Days < 1 {
		return st, fmt.Errorf("seed %+v: every size must be positive", size)
	}
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	start := time.Now()
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		exec := func(sql string, args ...any) func() error {
			return func() error { _, err := tx.Exec(ctx, sql, args...); return err }
		}
		var dropped []string // definitions of the indexes dropped for the bulk insert
		for _, step := range []struct {
			what string
			run  func() error
		}{
			{"triggers off", exec("SET LOCAL session_replication_role = replica")},
			// Room to sort the rows in time order and each rebuilt index in memory
			// (audit_log's are ~100 MB a million tasks).
			{"sort memory", exec("SET LOCAL work_mem = '256MB'")},
			{"index memory", exec("SET LOCAL maintenance_work_mem = '256MB'")},
			{"close lock", exec(seedCloseLockSQL)},
			{"open days", func() error { return openDays(ctx, tx, size, tz, now) }},
			{"workers", exec(seedWorkersSQL, size.Workers, size.Days, tz, now, hex.EncodeToString(tag))},
			{"drop indexes", func() (err error) { dropped, err = dropIndexes(ctx, tx); return err }},
			{"plan", exec(seedPlanSQL, size.Tasks, size.Days, tz, now, size.Workers)},
			{"tasks", exec(seedTasksSQL, author)},
			{"audit log", exec(seedLogSQL, tz)},
			{"processed events", exec(seedEventsSQL, events.TaskhandlerConsumer)},
			{"indexes", func() error { return rebuild(ctx, tx, dropped) }},
			{"worker_day_totals", exec(seedTotalsSQL)},
			{"task_tops", exec(seedTopsSQL)},
		} {
			t0 := time.Now()
			if err := step.run(); err != nil {
				return fmt.Errorf("seed: %s: %w", step.what, err)
			}
			st.Steps = append(st.Steps, fmt.Sprintf("%s %s", step.what, time.Since(t0).Round(time.Millisecond)))
		}
		return tx.QueryRow(ctx, `SELECT count(*), count(*) + count(completed_at), count(*) + count(completed_at) FROM seed_plan`).
			Scan(&st.Tasks, &st.LogRows, &st.Events)
	})
	st.Insert = time.Since(start)
	if err != nil {
		return st, err
	}
	start = time.Now()
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE users, tasks, audit_log, processed_events, worker_day_totals, task_tops"); err != nil {
		return st, fmt.Errorf("seed: vacuum: %w", err)
	}
	st.Vacuum = time.Since(start)
	return st, nil
}

// dropIndexes drops the plain (not constraint) indexes of the tables that get a row per
// task or event, and returns their definitions: a million rows insert several times
// faster without them, and an index built once by sorting is the same index.
func dropIndexes(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `
		SELECT format('%I.%I', i.schemaname, i.indexname), i.indexdef
		FROM pg_indexes i
		WHERE i.schemaname = current_schema() AND i.tablename IN ('tasks', 'audit_log', 'processed_events')
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass)
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	type index struct{ name, def string }
	idx, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var x index
		return x, r.Scan(&x.name, &x.def)
	})
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	defs := make([]string, 0, len(idx))
	for _, x := range idx {
		if _, err := tx.Exec(ctx, "DROP INDEX "+x.name); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", x.name, err)
		}
		defs = append(defs, x.def)
	}
	return defs, nil
}

// rebuild creates the indexes dropIndexes dropped, from their own definitions.
func rebuild(ctx context.Context, tx pgx.Tx, defs []string) error {
	for _, def := range defs {
		if _, err := tx.Exec(ctx, def); err != nil {
			return fmt.Errorf("%s: %w", def, err)
		}
	}
	return nil
}

// openDays fails if one of the seeded days is closed: keep_closed_days's check, which
// the triggers being off would skip.
func openDays(ctx context.Context, tx pgx.Tx, size SeedSize, tz string, now time.Time) error {
	var closed *string
	if err := tx.QueryRow(ctx, seedClosedSQL, size.Days, tz, now).Scan(&closed); err != nil {
		return err
	}
	if closed != nil {
		return fmt.Errorf("business day %s is closed; seed fewer days or a fresh database", *closed)
	}
	return nil
}

// seedCloseLockSQL holds off a daily close while seeding, taking the lock every money
// writer takes (keep_closed_days, taskhandler) shared; its key is daily_close_lock_key().
const seedCloseLockSQL = `SELECT pg_advisory_xact_lock_shared(daily_close_lock_key())`

// seedClosedSQL is the last closed day if it is one of the last $1 days in zone $2 as
// of $3 (keep_closed_days would refuse their rows), else NULL.
const seedClosedSQL = `
SELECT CASE WHEN max(business_date) >= ($3::timestamptz AT TIME ZONE $2)::date - ($1::int - 1)
            THEN max(business_date)::text END
FROM closed_days`

// seedWorkersSQL registers the workers ($1) an hour before the first of the last $2
// days in zone $3 as of $4; $5 keeps names and e-mails unique across seedings. Their ids
// go to seed_workers, numbered from 0, for the plan to pick from.
const seedWorkersSQL = `
CREATE TEMP TABLE seed_workers ON COMMIT DROP AS
WITH w AS (
    INSERT INTO users (id, name, email, role, photo_hash_mac, active, created_at)
    SELECT gen_random_uuid(), format('seed worker %s-%s', $5::text, i),
           format('seed-worker-%s-%s@loadtest.example', $5::text, i), 'worker',
           decode(md5($5::text || 'a' || i) || md5($5::text || 'b' || i), 'hex'), true,
           ((($4::timestamptz AT TIME ZONE $3)::date - ($2::int - 1))::timestamp AT TIME ZONE $3) - interval '1 hour'
    FROM generate_series(1, $1::int) i
    RETURNING id
)
SELECT (row_number() OVER (ORDER BY id) - 1)::int AS n, id FROM w`

// seedPlanSQL plans every task ($1 over the last $2 days in zone $3 as of $4, among $5
// workers): its id, the ids of its events, its worker, reward, fee and instants. Task i
// falls on day i % $2, whose bounds are computed once per day.
const seedPlanSQL = `
CREATE TEMP TABLE seed_plan ON COMMIT DROP AS
WITH days AS (
    SELECT ix, day_start, least(day_start + interval '1 day', $4::timestamptz) AS day_end
    FROM generate_series(0, $2::int - 1) ix,
         LATERAL (SELECT ((($4::timestamptz AT TIME ZONE $3)::date - ($2::int - 1 - ix))::timestamp AT TIME ZONE $3) AS day_start) d
)
SELECT i, gen_random_uuid() AS task_id, gen_random_uuid() AS create_event,
       CASE WHEN i % 4 <> 0 THEN gen_random_uuid() END AS complete_event,
       w.id AS assignee, reward, fee, created_at,
       CASE WHEN i % 4 <> 0 THEN created_at + (day_end - created_at) * (random() * 0.999) END AS completed_at
FROM (
    SELECT i, floor(random() * $5::int)::int AS pick,
           20 + floor(random() * 21)::bigint AS reward,
           -(10 + floor(random() * 11)::bigint) AS fee,
           day_start + (day_end - day_start) * ((i / $2::int)::float8 / ceil($1::float8 / $2::int)) AS created_at,
           day_end
    FROM generate_series(0, $1::int - 1) i
    JOIN days ON days.ix = i % $2::int
) p
JOIN seed_workers w ON w.n = p.pick`

// seedTasksSQL writes the tasks, authored by $1, in the order they were created.
const seedTasksSQL = `
INSERT INTO tasks (id, author_id, assignee_id, description, reward, fee, status, created_at, updated_at, completed_at)
SELECT task_id, $1, assignee, 'seeded task ' || i, reward, fee,
       CASE WHEN completed_at IS NULL THEN 'in_progress' ELSE 'complete' END::task_status,
       created_at, coalesce(completed_at, created_at), completed_at
FROM seed_plan
ORDER BY created_at`

// seedLogSQL writes each task's fee and, if complete, reward, dated in zone $1.
const seedLogSQL = `
INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id, created_at)
SELECT assignee, task_id, kind, amount, (at AT TIME ZONE $1)::date, event_id, at
FROM (
    SELECT assignee, task_id, 'fee'::audit_kind AS kind, fee AS amount, create_event AS event_id, created_at AS at FROM seed_plan
    UNION ALL
    SELECT assignee, task_id, 'reward', reward, complete_event, completed_at FROM seed_plan WHERE completed_at IS NOT NULL
) r
ORDER BY at, kind`

// seedEventsSQL records consumer $1's (taskhandler's) de-duplication row of every event,
// in key order: the primary key, on random ids, is then filled page by page instead of
// at random (nothing reads processed_events in the order it was written).
const seedEventsSQL = `
INSERT INTO processed_events (consumer, event_id, outcome, processed_at)
SELECT $1, event_id, 'applied', at
FROM (
    SELECT create_event AS event_id, created_at AS at FROM seed_plan
    UNION ALL
    SELECT complete_event, completed_at FROM seed_plan WHERE completed_at IS NOT NULL
) e
ORDER BY event_id`

// seedTotalsSQL adds the seeded workers' audit rows to worker_day_totals: the
// migration's fill, upserted as worker_day_totals_apply does.
const seedTotalsSQL = `
INSERT INTO worker_day_totals AS w (user_id, business_date, rewards, fees, reward_rows, fee_rows)
SELECT user_id, business_date,
       coalesce(sum(amount) FILTER (WHERE kind = 'reward'), 0),
       coalesce(sum(amount) FILTER (WHERE kind = 'fee'), 0),
       count(*) FILTER (WHERE kind = 'reward'),
       count(*) FILTER (WHERE kind = 'fee')
FROM audit_log
WHERE kind IN ('fee', 'reward') AND user_id IN (SELECT id FROM seed_workers)
GROUP BY user_id, business_date
ORDER BY user_id, business_date
ON CONFLICT (user_id, business_date) DO UPDATE
SET rewards = w.rewards + EXCLUDED.rewards,
    fees = w.fees + EXCLUDED.fees,
    reward_rows = w.reward_rows + EXCLUDED.reward_rows,
    fee_rows = w.fee_rows + EXCLUDED.fee_rows`

// seedTopsSQL offers the seeded completions to task_tops: the migration's fill, merged
// as task_tops_offer does (the earlier completion, then the lower id, keeps the slot).
const seedTopsSQL = `
INSERT INTO task_tops AS t (slot, reward, completed_at, task_id)
SELECT DISTINCT ON (slot, reward) slot, reward, completed_at, id
FROM (SELECT date_bin('15 minutes', completed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS slot,
             reward, completed_at, task_id AS id
      FROM seed_plan WHERE completed_at IS NOT NULL) c
ORDER BY slot, reward, completed_at, id
ON CONFLICT (slot, reward) DO UPDATE
SET completed_at = EXCLUDED.completed_at, task_id = EXCLUDED.task_id
WHERE (EXCLUDED.completed_at, EXCLUDED.task_id) < (t.completed_at, t.task_id)`
