package pgutil_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/sql/migrations"
)

// TestEnumMigrationConvertsRowsInPlace writes users, tasks and audit rows under the text
// columns of version 5, migrates to the enum types and back, and checks that the rows
// survive both ways and that the rules on those columns (checks, partial indexes,
// read-model triggers, the closed-day lock) still hold on each side.
func TestEnumMigrationConvertsRowsInPlace(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, _ := pgtest.NewDB(t)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	require.NoError(t, err)
	_, err = provider.DownTo(ctx, 5)
	require.NoError(t, err)

	manager, worker, open, done := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	exec(t, pool, `INSERT INTO users (id, name, email, role, photo_hash_mac) VALUES
		($1, 'M', 'm@example.com', 'manager', '\x01'), ($2, 'W', 'w@example.com', 'worker', '\x02')`, manager, worker)
	exec(t, pool, `INSERT INTO tasks (id, author_id, assignee_id, description, reward, fee) VALUES
		($1, $3, $4, 'open', 25, -15), ($2, $3, $4, 'done', 30, -12)`, open, done, manager, worker)
	exec(t, pool, `INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id) VALUES
		($1, $2, 'fee', -15, '2026-01-01', gen_random_uuid()), ($1, $3, 'fee', -12, '2026-01-01', gen_random_uuid())`,
		worker, open, done)

	_, err = provider.UpTo(ctx, 6)
	require.NoError(t, err)
	require.Equal(t, "user_role", columnType(t, pool, "users", "role"))
	require.Equal(t, "task_status", columnType(t, pool, "tasks", "status"))
	require.Equal(t, "audit_kind", columnType(t, pool, "audit_log", "kind"))
	require.Equal(t, "worker", text(t, pool, `SELECT role::text FROM users WHERE id = $1`, worker))
	require.Equal(t, "in_progress", text(t, pool, `SELECT status::text FROM tasks WHERE id = $1`, open))
	require.Equal(t, "2", text(t, pool, `SELECT count(*)::text FROM audit_log WHERE kind = 'fee'`))

	// The rules on the converted columns still hold.
	requireFails(t, pool, `UPDATE tasks SET status = 'complete' WHERE id = $1`, "23514", open)
	requireFails(t, pool, `INSERT INTO users (id, name, email, role, photo_hash_mac) VALUES ($1, 'X', 'x@example.com', 'boss', '\x03')`, "22P02", uuid.New())
	requireFails(t, pool, `INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id)
		VALUES ($1, $2, 'reward', -1, '2026-01-01', gen_random_uuid())`, "23514", worker, done)
	exec(t, pool, `UPDATE tasks SET status = 'complete', completed_at = now() WHERE id = $1`, done)
	exec(t, pool, `INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id)
		VALUES ($1, $2, 'reward', 30, '2026-01-02', gen_random_uuid())`, worker, done)
	require.Equal(t, "1", text(t, pool, `SELECT count(*)::text FROM task_tops WHERE task_id = $1`, done), "the completion trigger fires")
	require.Equal(t, "30", text(t, pool, `SELECT rewards::text FROM worker_day_totals WHERE user_id = $1 AND business_date = '2026-01-02'`, worker))
	require.Equal(t, "1", text(t, pool, `SELECT count(*)::text FROM pg_indexes WHERE indexname = 'users_active_workers_idx'`))
	exec(t, pool, `INSERT INTO closed_days (business_date, workers) VALUES ('2026-01-01', 1)`)
	requireFails(t, pool, `INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id)
		VALUES ($1, $2, 'fee', -10, '2026-01-01', gen_random_uuid())`, "23514", worker, open)
	require.Equal(t, text(t, pool, `SELECT hashtext('ates.dailyaccounting.close')::text`),
		text(t, pool, `SELECT daily_close_lock_key()::text`), "the lock key is the one earlier releases take")

	_, err = provider.DownTo(ctx, 5)
	require.NoError(t, err)
	require.Equal(t, "text", columnType(t, pool, "users", "role"))
	require.Equal(t, "text", columnType(t, pool, "tasks", "status"))
	require.Equal(t, "text", columnType(t, pool, "audit_log", "kind"))
	require.Equal(t, "complete", text(t, pool, `SELECT status FROM tasks WHERE id = $1`, done))
	require.Equal(t, "3", text(t, pool, `SELECT count(*)::text FROM audit_log`))
	requireFails(t, pool, `INSERT INTO users (id, name, email, role, photo_hash_mac) VALUES ($1, 'X', 'x@example.com', 'boss', '\x03')`, "23514", uuid.New())
	requireFails(t, pool, `INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id)
		VALUES ($1, $2, 'fee', -10, '2026-01-01', gen_random_uuid())`, "23514", worker, open)

	_, err = provider.Up(ctx)
	require.NoError(t, err, "and up again")
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	_, err := pool.Exec(t.Context(), sql, args...)
	require.NoError(t, err, sql)
}

func text(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) string {
	t.Helper()
	var s string
	require.NoError(t, pool.QueryRow(t.Context(), sql, args...).Scan(&s), sql)
	return s
}

func columnType(t *testing.T, pool *pgxpool.Pool, table, column string) string {
	t.Helper()
	return text(t, pool, `SELECT udt_name::text FROM information_schema.columns WHERE table_name = $1 AND column_name = $2`, table, column)
}

func requireFails(t *testing.T, pool *pgxpool.Pool, sql, code string, args ...any) {
	t.Helper()
	_, err := pool.Exec(t.Context(), sql, args...)
	require.ErrorContains(t, err, "SQLSTATE "+code, sql)
}
