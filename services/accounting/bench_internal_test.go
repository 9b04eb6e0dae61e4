package accounting

import (
	"context"
	"fmt"
	"testing"

	"github.com/ates/ates/services/internal/ledgertest"
)

// BenchmarkReadsOfABusyDay reads an open day of 100 workers whose audit log holds 10,000
// and then 200,000 rows: GetStats' sums and GetBalance's figures with a page of 20 rows
// cost the same on both, since they read one totals row per worker. audit_log_scan is
// the sum GetStats ran before, for comparison.
func BenchmarkReadsOfABusyDay(b *testing.B) {
	ctx := context.Background()
	for _, tasks := range []int{5_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", 2*tasks), func(b *testing.B) {
			pool, day, workers := ledgertest.BusyDay(b, "2026-01-15", 100, tasks)
			s := newStore(pool)
			b.Run("GetStats", func(b *testing.B) {
				for b.Loop() {
					if _, _, err := s.DaySums(ctx, day); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("GetBalance", func(b *testing.B) {
				for b.Loop() {
					if _, _, err := s.Balance(ctx, workers[0], day, page{Limit: 20}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("audit_log_scan", func(b *testing.B) {
				for b.Loop() {
					var rewards, fees int64
					if err := pool.QueryRow(ctx, `SELECT coalesce(sum(amount) FILTER (WHERE kind = 'reward'), 0),
						coalesce(sum(amount) FILTER (WHERE kind = 'fee'), 0) FROM audit_log WHERE business_date = $1`, day).Scan(&rewards, &fees); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
