package dailyaccounting_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/dailyaccounting/closetest"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/pgtest"
)

// BenchmarkCloseDay closes one business day of 5,000 workers with four money rows each
// (three fees and a reward), as the nightly job does: balances, payouts, outbox rows.
func BenchmarkCloseDay(b *testing.B) {
	const workers = 5000
	ctx := context.Background()
	pool, _ := pgtest.NewDB(b)
	closer := dailyaccounting.NewCloser(pool, time.UTC, slog.New(slog.DiscardHandler))
	exec := func(sql string, args ...any) {
		b.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO users (id, name, email, role, photo_hash_mac)
		SELECT gen_random_uuid(), 'w' || i, 'w' || i || '@example.com', 'worker', int8send(i)
		FROM generate_series(1, $1) i`, workers)
	exec(`INSERT INTO users (id, name, email, role, photo_hash_mac)
		VALUES (gen_random_uuid(), 'boss', 'boss@example.com', 'manager', '\x00')`)
	exec(`INSERT INTO tasks (id, author_id, assignee_id, description, reward, fee)
		SELECT gen_random_uuid(), (SELECT id FROM users WHERE role = 'manager'), u.id, 'bench', 30, -15
		FROM users u, generate_series(1, 3) WHERE u.role = 'worker'`)

	first := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		day := first.AddDate(0, 0, i)
		b.StopTimer()
		// Every task's assignee pays its fee; one task in three earns a reward (in
		// rotation, so balances go up and down from day to day).
		exec(`INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id)
			SELECT assignee_id, id, 'fee', -(10 + (hashtext(id::text || $1::date::text) & 7)), $1::date, gen_random_uuid() FROM tasks`, day)
		exec(`INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id)
			SELECT DISTINCT ON (assignee_id) assignee_id, id, 'reward', 20 + (hashtext(id::text || $1::date::text) & 15), $1::date, gen_random_uuid()
			FROM tasks ORDER BY assignee_id, hashtext(id::text || $1::date::text)`, day)
		b.StartTimer()
		closed, err := closer.CloseDay(ctx, day)
		if err != nil || len(closed) != 1 {
			b.Fatalf("close %s: %v, %v", day, closed, err)
		}
	}
	b.ReportMetric(float64(workers), "workers/day")
}

// BenchmarkCloseCrowdedDay closes a day of 100,000 workers and 1,000,000 log rows (issue
// 8: within twice the time of bare SQL doing the same writes) and reports both times
// and their ratio; ns/op is the close alone. Each iteration seeds a fresh database for
// a minute or so, so run it once:
//
//	go test -run '^$' -bench CloseCrowdedDay -benchtime 1x ./services/dailyaccounting
func BenchmarkCloseCrowdedDay(b *testing.B) {
	const workers, rows = 100_000, 1_000_000
	ctx := context.Background()
	date := "2026-02-10"
	day, err := bizday.Parse(date)
	if err != nil {
		b.Fatal(err)
	}
	var closeTotal, bareTotal time.Duration
	b.StopTimer()
	for range b.N {
		pool, _ := pgtest.NewDB(b)
		closetest.Seed(b, pool, date, workers, rows)
		bare, balances, err := closetest.Bare(ctx, pool, day)
		if err != nil {
			b.Fatal(err)
		}
		if balances != workers {
			b.Fatalf("the bare close wrote %d balance rows, want %d", balances, workers)
		}
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
			b.Fatalf("vacuum: %v", err)
		}
		closer := dailyaccounting.NewCloser(pool, time.UTC, slog.New(slog.DiscardHandler))
		start := time.Now()
		b.StartTimer()
		closed, err := closer.CloseDay(ctx, day)
		b.StopTimer()
		took := time.Since(start)
		if err != nil || len(closed) != 1 || closed[0].Workers != workers {
			b.Fatalf("close %s: %+v, %v", date, closed, err)
		}
		closeTotal += took
		bareTotal += bare
		b.Logf("close %.2fs, bare SQL %.2fs, ratio %.2f", took.Seconds(), bare.Seconds(), took.Seconds()/bare.Seconds())
	}
	b.ReportMetric(closeTotal.Seconds()/float64(b.N), "close-s")
	b.ReportMetric(bareTotal.Seconds()/float64(b.N), "bare-s")
	b.ReportMetric(closeTotal.Seconds()/bareTotal.Seconds(), "close/bare")
}
