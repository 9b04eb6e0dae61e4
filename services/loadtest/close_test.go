//go:build loadtest

package loadtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ates/ates/services/dailyaccounting/closetest"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/pgtest"
)

// closePhase closes a crowded day (LOADTEST_CLOSE_WORKERS workers, default 100,000, and
// LOADTEST_CLOSE_ROWS log rows, default 1,000,000) with `ates close-day`, the operator
// command, and times the same writes as bare SQL in the same database first (rolled
// back, then vacuumed). The day lives in a private database of its own: closing a day
// in the system's database would close the day the other workloads write into. Both
// rows' throughput is workers closed per second, so the close's ratio is bare seconds
// over close seconds; issue 8 wants at least 0.5.
func closePhase(t *testing.T, cfg config, s *system) []result {
	t.Helper()
	workers, rows := 100_000, 1_000_000
	if cfg.smoke {
		workers, rows = 50, 500
	}
	workers = envInt(t, "LOADTEST_CLOSE_WORKERS", workers)
	rows = envInt(t, "LOADTEST_CLOSE_ROWS", rows)
	ctx := context.Background()
	const date = "2026-02-10"
	day, err := bizday.Parse(date)
	if err != nil {
		t.Fatal(err)
	}
	pool, dbURL := pgtest.NewDB(t)
	seeded := time.Now()
	closetest.Seed(t, pool, date, workers, rows)
	t.Logf("close: seeded %d workers and %d log rows in %s", workers, rows, time.Since(seeded).Round(time.Second))

	bare, balances, err := closetest.Bare(ctx, pool, day)
	if err != nil {
		t.Fatal(err)
	}
	if balances != int64(workers) {
		t.Fatalf("the bare close wrote %d balance rows, want %d", balances, workers)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		t.Fatalf("vacuum: %v", err)
	}

	start := time.Now()
	cmd := startProc(t, s.bin, s.logDir, "close-day", s.env("ATES_DATABASE_URL="+dbURL), "close-day", "--date", date)
	if err := cmd.wait(10 * time.Minute); err != nil {
		t.Fatalf("ates close-day: %v; see %s", err, cmd.logPath)
	}
	took := time.Since(start)

	// The close wrote what the day holds: a balance, a mail per worker, and payouts
	// that add up to the positive closings.
	var nBalances, nMails int
	var paid, positive int64
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM balances WHERE business_date = $1),
		(SELECT count(*) FROM outbox),
		(SELECT coalesce(-sum(amount), 0) FROM audit_log WHERE kind = 'payout' AND business_date = $1),
		(SELECT coalesce(sum(greatest(rewards + fees, 0)), 0) FROM worker_day_totals WHERE business_date = $1)`, day,
	).Scan(&nBalances, &nMails, &paid, &positive); err != nil {
		t.Fatalf("read the close back: %v", err)
	}
	if nBalances != workers || nMails != workers || paid != positive || paid == 0 {
		t.Fatalf("close of %s: %d balances and %d mails for %d workers, paid %d of %d", date, nBalances, nMails, workers, paid, positive)
	}

	base := result{Name: "close_bare_sql", Kind: "baseline", Calls: 1, Seconds: bare.Seconds(), Throughput: float64(workers) / bare.Seconds()}
	closed := result{Name: "daily_close_100k", Kind: "workload", Calls: 1, Seconds: took.Seconds(), Throughput: float64(workers) / took.Seconds(), Baseline: base.Name,
		// Within 2× the bare SQL's time: at least half its workers per second.
		goal: atLeastOfBaseline(0.5, base.Name),
		Note: fmt.Sprintf("%d workers, %d log rows; req/s is workers closed per second", workers, rows)}
	ratio := closed.Throughput / base.Throughput
	closed.Ratio = &ratio
	t.Logf("close: %d workers in %.2fs, bare SQL %.2fs (close takes %.2f× the bare SQL)", workers, took.Seconds(), bare.Seconds(), 1/ratio)
	return []result{base, closed}
}
