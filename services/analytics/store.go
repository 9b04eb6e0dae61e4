package analytics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ates/ates/services/analytics/internal/analyticsdb"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/ledger"
	"github.com/ates/ates/services/internal/pgutil"
)

// store reads the per-worker day totals, the top-task slots, balances and tasks;
// analytics never writes. Each answer is
// read in one read-only snapshot, so a close running meanwhile cannot mix two states.
type store struct {
	pool *pgxpool.Pool
}

func (s *store) snapshot(ctx context.Context, fn func(q *analyticsdb.Queries) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error { return fn(analyticsdb.New(tx)) })
}

// currentDay is the first open business day (ledger.FirstOpen) given today's date.
func (s *store) currentDay(ctx context.Context, today time.Time) (time.Time, error) {
	last, err := analyticsdb.New(s.pool).ClosedDayLast(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the last closed day: %w", err)
	}
	return ledger.FirstOpen(today, last), nil
}

// maxBelowZero bounds how many workers below zero one answer names.
const maxBelowZero = 1000

// belowZero is a worker whose balance of a day is below zero.
type belowZero struct {
	id          uuid.UUID
	name, email string
	balance     int64
}

// workerStats counts the active workers and those whose balance of day is below zero,
// and names the lowest maxBelowZero of the latter: from the stored balances of a closed
// day; for an open one, rolled forward from the last close (WorkersBelowZero), so that
// only the counts and the named workers leave the database however many workers there
// are.
func (s *store) workerStats(ctx context.Context, day time.Time) (negative, workers int64, below []belowZero, err error) {
	err = s.snapshot(ctx, func(q *analyticsdb.Queries) error {
		closed, err := q.ClosedDayExists(ctx, day)
		if err != nil {
			return fmt.Errorf("look up close of %s: %w", bizday.Format(day), err)
		}
		if closed {
			if workers, err = q.UserCountWorkers(ctx); err != nil {
				return fmt.Errorf("count workers: %w", err)
			}
			if negative, err = q.BalanceCountNegative(ctx, day); err != nil {
				return fmt.Errorf("count workers below zero on %s: %w", bizday.Format(day), err)
			}
			rows, err := q.BalanceListNegative(ctx, analyticsdb.BalanceListNegativeParams{Day: day, MaxRows: maxBelowZero})
			if err != nil {
				return fmt.Errorf("list workers below zero on %s: %w", bizday.Format(day), err)
			}
			for _, r := range rows {
				below = append(below, belowZero{id: r.ID, name: r.Name, email: r.Email, balance: r.Closing})
			}
			return nil
		}
		last, err := q.ClosedDayLastBefore(ctx, day)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			last = time.Time{}
		case err != nil:
			return fmt.Errorf("find last closed day: %w", err)
		}
		row, err := q.WorkersBelowZero(ctx, analyticsdb.WorkersBelowZeroParams{After: last, Day: day})
		if err != nil {
			return fmt.Errorf("count workers below zero on %s: %w", bizday.Format(day), err)
		}
		negative, workers = row.Negative, row.Workers
		if negative == 0 {
			return nil
		}
		rows, err := q.WorkersBelowZeroList(ctx, analyticsdb.WorkersBelowZeroListParams{After: last, Day: day, MaxRows: maxBelowZero})
		if err != nil {
			return fmt.Errorf("list workers below zero on %s: %w", bizday.Format(day), err)
		}
		for _, r := range rows {
			below = append(below, belowZero{id: r.ID, name: r.Name, email: r.Email, balance: r.Closing})
		}
		return nil
	})
	return negative, workers, below, err
}

// earnings returns the company's earnings of each day in [from, to] with activity.
func (s *store) earnings(ctx context.Context, from, to time.Time) (map[time.Time]int64, error) {
	rows, err := analyticsdb.New(s.pool).TotalEarningsByDay(ctx, analyticsdb.TotalEarningsByDayParams{FromDay: from, ToDay: to})
	if err != nil {
		return nil, fmt.Errorf("sum earnings from %s to %s: %w", bizday.Format(from), bizday.Format(to), err)
	}
	out := make(map[time.Time]int64, len(rows))
	for _, r := range rows {
		out[r.BusinessDate] = r.Earnings
	}
	return out, nil
}

// topTask returns the completed task with the highest reward completed in [from, until).
// The row carries the assignee's name beside the task.
func (s *store) topTask(ctx context.Context, from, until time.Time) (analyticsdb.TaskTopCompletedRow, error) {
	t, err := analyticsdb.New(s.pool).TaskTopCompleted(ctx, analyticsdb.TaskTopCompletedParams{FromTime: from, UntilTime: until})
	if err != nil {
		return analyticsdb.TaskTopCompletedRow{}, fmt.Errorf("find top task: %w", pgutil.Translate(err))
	}
	return t, nil
}
