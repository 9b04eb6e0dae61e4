// Package ledgertest writes users, tasks and audit log rows with plain SQL for the money
// tests, as auth and taskhandler would have written them, and reads balances back.
package ledgertest

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/pgtest"
)

// User is a user row.
type User struct {
	ID          uuid.UUID
	Name, Email string
}

// Book writes fixtures into one test database.
type Book struct {
	t      testing.TB
	pool   *pgxpool.Pool
	author uuid.UUID
	rows   []Row
}

// Row is an audit log row the book wrote.
type Row struct {
	User   uuid.UUID
	Task   uuid.UUID
	Kind   string
	Amount int64
	Day    string
}

// New returns a book on pool; its tasks are authored by a manager it creates.
func New(t testing.TB, pool *pgxpool.Pool) *Book {
	t.Helper()
	b := &Book{t: t, pool: pool}
	b.author = b.User("manager").ID
	return b
}

// User inserts a user with role and a unique name and email.
func (b *Book) User(role string) User {
	b.t.Helper()
	id := uuid.New()
	u := User{ID: id, Name: fmt.Sprintf("%s %s", role, id.String()[:8]), Email: fmt.Sprintf("%s-%s@example.com", role, id)}
	mac := make([]byte, 32)
	_, _ = rand.Read(mac)
	b.exec("INSERT INTO users (id, name, email, role, photo_hash_mac) VALUES ($1, $2, $3, $4, $5)",
		u.ID, u.Name, u.Email, role, mac)
	return u
}

// Pool is the database the book writes to.
func (b *Book) Pool() *pgxpool.Pool { return b.pool }

// Worker inserts a worker.
func (b *Book) Worker() User {
	b.t.Helper()
	return b.User("worker")
}

// Fee creates a task assigned to user and charges its fee (negative) on day; it returns
// the task's id.
func (b *Book) Fee(user uuid.UUID, day string, fee int64) uuid.UUID {
	b.t.Helper()
	task := uuid.New()
	b.exec("INSERT INTO tasks (id, author_id, assignee_id, description, reward, fee) VALUES ($1, $2, $3, $4, 30, -15)",
		task, b.author, user, Description(task))
	b.log(user, task, "fee", fee, day)
	return task
}

// Reward credits user with reward (positive) on day for completing task.
func (b *Book) Reward(user, task uuid.UUID, day string, reward int64) {
	b.t.Helper()
	b.log(user, task, "reward", reward, day)
}

// CompleteRewarded marks every open task the book rewarded complete, at noon UTC of its
// reward's day and with that reward, as the tasks service would have: analytics' top
// task then has them to choose from.
func (b *Book) CompleteRewarded() {
	b.t.Helper()
	b.exec(`UPDATE tasks t SET status = 'complete', reward = l.amount,
			completed_at = (l.business_date + TIME '12:00') AT TIME ZONE 'UTC'
		FROM audit_log l WHERE l.task_id = t.id AND l.kind = 'reward' AND t.status = 'in_progress'`)
}

// Description is the description Fee gave task.
func Description(task uuid.UUID) string { return "task " + task.String()[:8] }

// Balance is a balances row.
type Balance struct {
	Opening, Rewards, Fees, Closing, Payout, Carry int64
}

// Balances reads the balance rows of day by user.
func (b *Book) Balances(day string) map[uuid.UUID]Balance {
	b.t.Helper()
	rows, err := b.pool.Query(context.Background(),
		"SELECT user_id, opening, rewards, fees, closing, payout, carry FROM balances WHERE business_date = $1", day)
	if err != nil {
		b.t.Fatalf("read balances of %s: %v", day, err)
	}
	defer rows.Close()
	out := map[uuid.UUID]Balance{}
	for rows.Next() {
		var id uuid.UUID
		var x Balance
		if err := rows.Scan(&id, &x.Opening, &x.Rewards, &x.Fees, &x.Closing, &x.Payout, &x.Carry); err != nil {
			b.t.Fatalf("scan balance: %v", err)
		}
		out[id] = x
	}
	if err := rows.Err(); err != nil {
		b.t.Fatalf("read balances of %s: %v", day, err)
	}
	return out
}

// Count runs a count(*) query.
func (b *Book) Count(sql string, args ...any) int {
	b.t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		b.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Rows returns the rows the book wrote for user on day, in the order it wrote them.
func (b *Book) Rows(user uuid.UUID, day string) []Row {
	var out []Row
	for _, r := range b.rows {
		if r.User == user && r.Day == day {
			out = append(out, r)
		}
	}
	return out
}

func (b *Book) log(user, task uuid.UUID, kind string, amount int64, day string) {
	b.t.Helper()
	b.rows = append(b.rows, Row{User: user, Task: task, Kind: kind, Amount: amount, Day: day})
	b.exec("INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id) VALUES ($1, $2, $3, $4, $5, $6)",
		user, task, kind, amount, day, uuid.New())
}

func (b *Book) exec(sql string, args ...any) {
	b.t.Helper()
	if _, err := b.pool.Exec(context.Background(), sql, args...); err != nil {
		b.t.Fatalf("%s: %v", sql, err)
	}
}

// BusyDay is a fresh migrated database holding one busy day (see Busy) of workers
// workers and tasks tasks on date, vacuumed and analysed so that reads plan as they
// would on a live database. It returns the pool, the day and the workers' ids.
func BusyDay(tb testing.TB, date string, workers, tasks int) (*pgxpool.Pool, time.Time, []uuid.UUID) {
	tb.Helper()
	pool, _ := pgtest.NewDB(tb)
	ids := New(tb, pool).Busy(date, workers, tasks)
	if _, err := pool.Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
		tb.Fatalf("vacuum: %v", err)
	}
	day, err := bizday.Parse(date)
	if err != nil {
		tb.Fatalf("day %q: %v", date, err)
	}
	return pool, day, ids
}

// Busy adds workers new workers and a busy day: tasks tasks assigned round-robin to
// them, each charged its fee and completed (with its reward) during day (UTC), written
// by a few set-based statements, with the rows taskhandler would write. For benchmarks
// of reads whose cost must not grow with the day's rows. It returns the workers' ids.
func (b *Book) Busy(day string, workers, tasks int) []uuid.UUID {
	b.t.Helper()
	ids := make([]uuid.UUID, workers)
	for i := range ids {
		ids[i] = b.Worker().ID
	}
	b.busyTasks(day, ids, tasks)
	return ids
}

// Crowd is Busy for a crowd: its workers are written by one statement too, so that a
// day of 100,000 workers and a million log rows (tasks fee rows and tasks reward rows)
// is seeded in a minute rather than an hour. Names and emails are "crowd-N-…".
func (b *Book) Crowd(day string, workers, tasks int) []uuid.UUID {
	b.t.Helper()
	rows, err := b.pool.Query(context.Background(), `INSERT INTO users (id, name, email, role, photo_hash_mac)
		SELECT id, 'crowd ' || i, 'crowd-' || i || '-' || id || '@example.com', 'worker', uuid_send(gen_random_uuid())
		FROM (SELECT i, gen_random_uuid() AS id FROM generate_series(1, $1) i) g
		RETURNING id`, workers)
	if err != nil {
		b.t.Fatalf("insert %d workers: %v", workers, err)
	}
	ids := make([]uuid.UUID, 0, workers)
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			b.t.Fatalf("insert workers: %v", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		b.t.Fatalf("insert %d workers: %v", workers, err)
	}
	b.busyTasks(day, ids, tasks)
	return ids
}

// busyTasks writes Busy's tasks and their audit rows for the workers ids.
func (b *Book) busyTasks(day string, ids []uuid.UUID, tasks int) {
	b.t.Helper()
	b.exec(`INSERT INTO tasks (id, author_id, assignee_id, description, reward, fee, status, created_at, updated_at, completed_at)
		SELECT gen_random_uuid(), $1, ($2::uuid[])[1 + i % cardinality($2::uuid[])], 'busy',
		       20 + (hashtext(i::text) & 15), -10 - (hashtext(i::text || 'f') & 7), 'complete', at, at, at
		FROM generate_series(0, $3 - 1) i,
		     LATERAL (SELECT ($4::date::timestamp AT TIME ZONE 'UTC') + (i * interval '86399 seconds') / $3 AS at) a`,
		b.author, ids, tasks, day)
	b.exec(`INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id, created_at)
		SELECT assignee_id, id, 'fee', fee, $1::date, gen_random_uuid(), created_at
		FROM tasks WHERE description = 'busy' AND created_at >= ($1::date::timestamp AT TIME ZONE 'UTC') AND created_at < ($1::date::timestamp AT TIME ZONE 'UTC') + interval '1 day'`, day)
	b.exec(`INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id, created_at)
		SELECT assignee_id, id, 'reward', reward, $1::date, gen_random_uuid(), completed_at
		FROM tasks WHERE description = 'busy' AND created_at >= ($1::date::timestamp AT TIME ZONE 'UTC') AND created_at < ($1::date::timestamp AT TIME ZONE 'UTC') + interval '1 day'`, day)
}
