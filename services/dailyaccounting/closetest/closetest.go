// Package closetest seeds a crowded business day and times the writes of its close done
// by hand in bare SQL, the yardstick the daily close is measured against (issue 8: the
// close of 100,000 workers and a million log rows within twice the bare SQL's time).
package closetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/ledgertest"
)

// Seed writes a day of workers workers and rows audit rows (rows/2 tasks, each charged
// its fee and rewarded), with the worker_day_totals rows the triggers keep, then
// vacuums and analyses so the close plans as on a live database.
func Seed(tb testing.TB, pool *pgxpool.Pool, day string, workers, rows int) {
	tb.Helper()
	ledgertest.New(tb, pool).Crowd(day, workers, rows/2)
	if _, err := pool.Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
		tb.Fatalf("vacuum: %v", err)
	}
}

// bare is what closing day writes, as set-based statements with no round trip through
// a client: the balance rows, a payout row per paid worker, a mail per worker in the
// outbox (its payload the same fields as text rather than protobuf, about as long), and
// the closed_days row. Event ids are random, not derived.
var bare = []string{
	`INSERT INTO balances (user_id, business_date, opening, rewards, fees, closing, payout, carry)
	 SELECT user_id, $1::date, opening, rewards, fees, opening + rewards + fees,
	        greatest(opening + rewards + fees, 0), least(opening + rewards + fees, 0)
	 FROM (SELECT u.id AS user_id, coalesce(p.carry, 0) AS opening,
	              coalesce(s.rewards, 0) AS rewards, coalesce(s.fees, 0) AS fees
	       FROM users u
	       LEFT JOIN worker_day_totals s ON s.user_id = u.id AND s.business_date = $1::date
	       LEFT JOIN balances p ON p.user_id = u.id AND p.business_date = $1::date - 1
	       WHERE u.role = 'worker' OR s.user_id IS NOT NULL OR p.user_id IS NOT NULL) d`,
	`INSERT INTO audit_log (user_id, kind, amount, business_date, event_id)
	 SELECT user_id, 'payout', -payout, business_date, gen_random_uuid()
	 FROM balances WHERE business_date = $1::date AND payout > 0`,
	`INSERT INTO outbox (event_id, routing_key, message_type, payload)
	 SELECT gen_random_uuid(), $2, 'events.v1.SendEmail',
	        convert_to(concat_ws(',', u.id, u.email, u.name, b.business_date, b.opening, b.rewards,
	                             b.fees, b.closing, b.payout, b.carry), 'UTF8')
	 FROM balances b JOIN users u ON u.id = b.user_id
	 WHERE b.business_date = $1::date`,
	`INSERT INTO closed_days (business_date, workers)
	 SELECT $1::date, count(*) FROM balances WHERE business_date = $1::date`,
}

// Bare times the bare-SQL close of day in one transaction, which it rolls back, and
// returns how many balance rows it wrote. Roll-back leaves dead rows behind: vacuum
// before timing the real close.
func Bare(ctx context.Context, pool *pgxpool.Pool, day time.Time) (time.Duration, int64, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("bare close: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the point is to roll back
	start := time.Now()
	var balances int64
	for i, sql := range bare {
		args := []any{day}
		if strings.Contains(sql, "$2") {
			args = append(args, events.SendEmail)
		}
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil {
			return 0, 0, fmt.Errorf("bare close, statement %d: %w", i+1, err)
		}
		if i == 0 {
			balances = tag.RowsAffected()
		}
	}
	return time.Since(start), balances, nil
}
