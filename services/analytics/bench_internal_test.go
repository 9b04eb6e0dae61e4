package analytics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ates/ates/services/internal/ledgertest"
)

// BenchmarkReadsOfABusyDay reads an open day of 100 workers whose audit log holds 10,000
// and then 200,000 rows (every task completed that day): GetWorkerStats, and
// GetCompanyEarnings and GetTopTask over the 30 days up to it, cost the same on both.
func BenchmarkReadsOfABusyDay(b *testing.B) {
	ctx := context.Background()
	for _, tasks := range []int{5_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", 2*tasks), func(b *testing.B) {
			pool, day, _ := ledgertest.BusyDay(b, "2026-01-15", 100, tasks)
			from := day.AddDate(0, 0, -29)
			s := &store{pool: pool}
			b.Run("GetWorkerStats", func(b *testing.B) {
				for b.Loop() {
					if _, _, _, err := s.workerStats(ctx, day); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("GetCompanyEarnings30d", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.earnings(ctx, from, day); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("GetTopTask30d", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.topTask(ctx, from, day.Add(24*time.Hour)); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
