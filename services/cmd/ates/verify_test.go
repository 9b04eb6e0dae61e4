package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/ledgertest"
	"github.com/ates/ates/services/internal/pgtest"
)

// TestVerifyCommand runs `ates verify` on a database written by plain SQL (the triggers
// keep the read models): it passes, then names a tampered totals row and a tampered
// top-task row and fails, and passes again once they are put back. Not parallel: it sets
// the environment the command reads.
func TestVerifyCommand(t *testing.T) {
	pool, url := pgtest.NewDB(t)
	t.Setenv("ATES_DATABASE_URL", url)
	book := ledgertest.New(t, pool)
	s := ledgertest.ThreeDays(book, [3]string{"2026-03-01", "2026-03-02", "2026-03-03"})
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := pool.Exec(t.Context(), sql, args...)
		require.NoError(t, err)
	}
	// The rewarded tasks complete with their rewards (40 twice, 35, 25, 22), so task_tops
	// has rows to check too.
	exec(`UPDATE tasks t SET status = 'complete', completed_at = TIMESTAMPTZ '2026-03-03 10:00:00+00', reward = l.amount
		FROM audit_log l WHERE l.task_id = t.id AND l.kind = 'reward'`)
	require.Equal(t, 7, book.Count("SELECT count(*) FROM worker_day_totals"), "Ann and Bob on three days, Cid on one")
	require.Equal(t, 4, book.Count("SELECT count(*) FROM task_tops"), "one row per reward value in the slot")

	verify := func() (string, error) {
		t.Helper()
		var out bytes.Buffer
		err := run(t.Context(), []string{"verify"}, nil, &out)
		return out.String(), err
	}
	out, err := verify()
	require.NoError(t, err, "a database written only through the triggers is consistent: %s", out)
	require.Empty(t, out)

	exec(`UPDATE worker_day_totals SET rewards = rewards + 1 WHERE user_id = $1 AND business_date = '2026-03-03'`, s.Ann.ID)
	exec(`DELETE FROM task_tops WHERE reward = 40`)
	out, err = verify()
	require.Error(t, err)
	require.Contains(t, err.Error(), "2 read model rows differ")
	require.Contains(t, out, "worker_day_totals user="+s.Ann.ID.String()+" date=2026-03-03: stored rewards=58 ")
	require.Contains(t, out, "audit_log rewards=57 ")
	require.Contains(t, out, "task_tops slot=2026-03-03T10:00Z reward=40: stored task=none, tasks say task=")

	exec(`UPDATE worker_day_totals SET rewards = rewards - 1 WHERE user_id = $1 AND business_date = '2026-03-03'`, s.Ann.ID)
	exec(`UPDATE tasks SET status = 'in_progress', completed_at = NULL WHERE reward = 40`)
	exec(`UPDATE tasks SET status = 'complete', completed_at = TIMESTAMPTZ '2026-03-03 10:00:00+00' WHERE reward = 40`)
	out, err = verify()
	require.NoError(t, err, out)
}
