package analytics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/ledger"
	"github.com/ates/ates/services/internal/pgtest"
)

// TestWorkersBelowZeroMatchesTheLedger: the count of workers below zero on an open day,
// and the list of them with their closing balances, which the database computes, are
// what ledger.Open (the rule the daily close applies) gives worker by worker: random carries of the last closed day and
// random totals on four open days after it, some missing, some workers inactive.
func TestWorkersBelowZeroMatchesTheLedger(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(8, 27))
	closed := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	open := []time.Time{closed.AddDate(0, 0, 1), closed.AddDate(0, 0, 2), closed.AddDate(0, 0, 3), closed.AddDate(0, 0, 4)}

	type worker struct {
		id     uuid.UUID
		active bool
		carry  int64
		sums   []ledger.DaySums
	}
	var workers []worker
	for i := range 300 {
		w := worker{id: uuid.New(), active: i%10 != 0}
		_, err := pool.Exec(ctx, `INSERT INTO users (id, name, email, role, photo_hash_mac, active)
			VALUES ($1, $2, $3, 'worker', $4, $5)`, w.id, fmt.Sprintf("w%d", i), fmt.Sprintf("w%d@below.example", i), []byte(w.id.String()), w.active)
		require.NoError(t, err)
		if rng.IntN(3) > 0 { // a balance row of the closed day: its carry
			rewards, fees := int64(rng.IntN(60)), -int64(rng.IntN(60))
			closing := rewards + fees
			w.carry = min(closing, 0)
			_, err := pool.Exec(ctx, `INSERT INTO balances (user_id, business_date, opening, rewards, fees, closing, payout, carry)
				VALUES ($1, $2, 0, $3, $4, $5, $6, $7)`, w.id, closed, rewards, fees, closing, max(closing, 0), w.carry)
			require.NoError(t, err)
		}
		for _, d := range open {
			if rng.IntN(4) == 0 {
				continue // no activity that day
			}
			s := ledger.DaySums{Day: d, Rewards: int64(rng.IntN(80)), Fees: -int64(rng.IntN(80))}
			w.sums = append(w.sums, s)
			_, err := pool.Exec(ctx, `INSERT INTO worker_day_totals (user_id, business_date, rewards, fees, reward_rows, fee_rows)
				VALUES ($1, $2, $3, $4, 1, 1)`, w.id, d, s.Rewards, s.Fees)
			require.NoError(t, err)
		}
		workers = append(workers, w)
	}
	_, err := pool.Exec(ctx, "INSERT INTO closed_days (business_date, workers) VALUES ($1, $2)", closed, len(workers))
	require.NoError(t, err)

	s := &store{pool: pool}
	for _, d := range open {
		var want, active int64
		wantBelow := map[uuid.UUID]int64{}
		for _, w := range workers {
			if !w.active {
				continue
			}
			active++
			var upTo []ledger.DaySums // the open days up to d, as ledger.Open takes them
			for _, s := range w.sums {
				if !s.Day.After(d) {
					upTo = append(upTo, s)
				}
			}
			if closing := ledger.Open(w.carry, d, upTo).Closing; closing < 0 {
				want++
				wantBelow[w.id] = closing
			}
		}
		negative, n, below, err := s.workerStats(ctx, d)
		require.NoError(t, err)
		require.Equal(t, active, n)
		require.Equal(t, want, negative, "day %s", d.Format(time.DateOnly))
		require.NotZero(t, want, "the data has workers below zero")
		gotBelow := map[uuid.UUID]int64{}
		for i, b := range below {
			gotBelow[b.id] = b.balance
			require.NotEmpty(t, b.name)
			require.Contains(t, b.email, "@below.example")
			if i > 0 {
				require.LessOrEqual(t, below[i-1].balance, b.balance, "lowest first")
			}
		}
		require.Equal(t, wantBelow, gotBelow, "day %s", d.Format(time.DateOnly))
	}
}
