package dailyaccounting_test

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/internal/ledgertest"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/sql/migrations"
)

// TestReadModelsMigrationBackfills takes a database back to before the read models,
// writes money and completions there, and migrates up again: the migration fills the
// read models from the existing rows, so an upgraded database verifies clean.
func TestReadModelsMigrationBackfills(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	require.NoError(t, err)
	_, err = provider.DownTo(t.Context(), 3)
	require.NoError(t, err)

	book := ledgertest.New(t, pool)
	ledgertest.ThreeDays(book, [3]string{"2026-01-01", "2026-01-02", "2026-01-03"})
	_, err = pool.Exec(t.Context(), `UPDATE tasks t SET status = 'complete', completed_at = l.created_at, reward = l.amount
		FROM audit_log l WHERE l.task_id = t.id AND l.kind = 'reward'`)
	require.NoError(t, err)

	_, err = provider.Up(t.Context())
	require.NoError(t, err)
	require.Equal(t, 7, book.Count("SELECT count(*) FROM worker_day_totals"), "one row per worker and day with money")
	require.Positive(t, book.Count("SELECT count(*) FROM task_tops"))
	var diff bytes.Buffer
	n, err := dailyaccounting.Verify(t.Context(), pool, &diff)
	require.NoError(t, err)
	require.Zero(t, n, "read models after the upgrade:\n%s", diff.String())
}
