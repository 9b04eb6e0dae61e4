package accounting

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ates/ates/services/accounting/internal/accountingdb"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/ledger"
	"github.com/ates/ates/services/internal/pgutil"
)

// dayBalance is a user's account for one business day.
type dayBalance struct {
	UserID                                         uuid.UUID
	Day                                            time.Time
	Opening, Rewards, Fees, Closing, Payout, Carry int64
	// Closed says whether the day has been closed; if not, the figures are computed.
	Closed bool
}

// entry is one audit log row with its task's description.
type entry = accountingdb.LogListByUserDayRow

// store reads balances, the per-worker day totals and the audit log; accounting never
// writes.
type store struct {
	pool *pgxpool.Pool
}

// newStore returns a store on pool.
func newStore(pool *pgxpool.Pool) *store { return &store{pool: pool} }

// CurrentDay is the first open business day (ledger.FirstOpen) given today's date.
func (s *store) CurrentDay(ctx context.Context, today time.Time) (time.Time, error) {
	last, err := accountingdb.New(s.pool).ClosedDayLast(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the last closed day: %w", err)
	}
	return ledger.FirstOpen(today, last), nil
}

// page asks for up to Limit entries after the row with id AfterID (0 for the first page).
type page struct {
	AfterID int64
	Limit   int32
}

// Balance returns userID's balance for day and one page of that day's audit log rows,
// read in one snapshot. It fails with pgutil.ErrNotFound if the user does not exist.
func (s *store) Balance(ctx context.Context, userID uuid.UUID, day time.Time, pg page) (dayBalance, []entry, error) {
	var (
		b       dayBalance
		entries []entry
	)
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := accountingdb.New(tx)
		exists, err := q.UserExists(ctx, userID)
		if err != nil {
			return fmt.Errorf("look up user: %w", err)
		}
		if !exists {
			return fmt.Errorf("user %s: %w", userID, pgutil.ErrNotFound)
		}
		if b, err = readBalance(ctx, q, userID, day); err != nil {
			return err
		}
		entries, err = q.LogListByUserDay(ctx, accountingdb.LogListByUserDayParams{
			UserID: userID, Day: day, AfterID: pg.AfterID, PageLimit: pg.Limit,
		})
		if err != nil {
			return fmt.Errorf("list audit log: %w", err)
		}
		return nil
	})
	if err != nil {
		return dayBalance{}, nil, fmt.Errorf("balance of %s on %s: %w", userID, bizday.Format(day), err)
	}
	return b, entries, nil
}

// readBalance reads the row of a closed day, or computes the balance of an open one.
func readBalance(ctx context.Context, q *accountingdb.Queries, userID uuid.UUID, day time.Time) (dayBalance, error) {
	closed, err := q.ClosedDayExists(ctx, day)
	if err != nil {
		return dayBalance{}, fmt.Errorf("look up closed day: %w", err)
	}
	if closed {
		row, err := q.BalanceGet(ctx, accountingdb.BalanceGetParams{UserID: userID, BusinessDate: day})
		if errors.Is(err, pgx.ErrNoRows) {
			// Not a worker, or not yet one, when the day closed: nothing moved.
			return dayBalance{UserID: userID, Day: day, Closed: true}, nil
		}
		if err != nil {
			return dayBalance{}, fmt.Errorf("read balance: %w", err)
		}
		return dayBalance{
			UserID: userID, Day: day, Closed: true,
			Opening: row.Opening, Rewards: row.Rewards, Fees: row.Fees,
			Closing: row.Closing, Payout: row.Payout, Carry: row.Carry,
		}, nil
	}

	// Open: start from the carry of the last closed day (if any), then roll forward.
	var carry int64
	lastClosed, err := q.ClosedDayLastBefore(ctx, day)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		lastClosed = time.Time{} // nothing closed yet: every day so far is open
	case err != nil:
		return dayBalance{}, fmt.Errorf("find last closed day: %w", err)
	default:
		row, err := q.BalanceGet(ctx, accountingdb.BalanceGetParams{UserID: userID, BusinessDate: lastClosed})
		switch {
		case err == nil:
			carry = row.Carry
		case !errors.Is(err, pgx.ErrNoRows):
			return dayBalance{}, fmt.Errorf("read last closed balance: %w", err)
		}
	}
	rows, err := q.TotalsByDay(ctx, accountingdb.TotalsByDayParams{UserID: userID, After: lastClosed, Through: day})
	if err != nil {
		return dayBalance{}, fmt.Errorf("sum open days: %w", err)
	}
	sums := make([]ledger.DaySums, len(rows))
	for i, r := range rows {
		sums[i] = ledger.DaySums{Day: r.BusinessDate, Rewards: r.Rewards, Fees: r.Fees}
	}
	b := ledger.Open(carry, day, sums)
	return dayBalance{UserID: userID, Day: day, Opening: b.Opening, Rewards: b.Rewards, Fees: b.Fees, Closing: b.Closing}, nil
}

// DaySums returns the sums of every reward and every fee row of day, from the day's
// per-worker totals.
func (s *store) DaySums(ctx context.Context, day time.Time) (rewards, fees int64, err error) {
	row, err := accountingdb.New(s.pool).TotalsOfDay(ctx, day)
	if err != nil {
		return 0, 0, fmt.Errorf("sum totals of %s: %w", bizday.Format(day), err)
	}
	return row.Rewards, row.Fees, nil
}
