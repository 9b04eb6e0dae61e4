package dailyaccounting

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ates/ates/services/dailyaccounting/internal/dailyaccountingdb"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgutil"
)

// Verify recomputes the read models (worker_day_totals from audit_log, task_tops from
// tasks) in one snapshot, so it may run on a live database, writes one line per
// difference to w and returns how many it found.
func Verify(ctx context.Context, pool *pgxpool.Pool, w io.Writer) (int, error) {
	var (
		totals []dailyaccountingdb.VerifyTotalsRow
		tops   []dailyaccountingdb.VerifyTopTasksRow
	)
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := dailyaccountingdb.New(tx)
		var err error
		if totals, err = q.VerifyTotals(ctx); err != nil {
			return fmt.Errorf("compare worker_day_totals with audit_log: %w", err)
		}
		if tops, err = q.VerifyTopTasks(ctx); err != nil {
			return fmt.Errorf("compare task_tops with tasks: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("verify read models: %w", err)
	}
	for _, r := range totals {
		fmt.Fprintf(w, "worker_day_totals user=%s date=%s: stored rewards=%d fees=%d reward_rows=%d fee_rows=%d, audit_log rewards=%d fees=%d reward_rows=%d fee_rows=%d\n",
			r.UserID, bizday.Format(r.BusinessDate),
			r.StoredRewards, r.StoredFees, r.StoredRewardRows, r.StoredFeeRows,
			r.LogRewards, r.LogFees, r.LogRewardRows, r.LogFeeRows)
	}
	for _, r := range tops {
		fmt.Fprintf(w, "task_tops slot=%s reward=%d: stored task=%s, tasks say task=%s\n",
			r.Slot.UTC().Format("2006-01-02T15:04Z"), r.Reward, orNone(r.StoredTaskID), orNone(r.WantTaskID))
	}
	return len(totals) + len(tops), nil
}

func orNone(id string) string {
	if id == "" {
		return "none"
	}
	return id
}

// VerifyCommand is `ates verify`: it prints the differences between the read models
// and their recomputation and fails if there is any.
func VerifyCommand(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	pool, err := pgutil.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer pool.Close()
	n, err := Verify(ctx, pool, stdout)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("verify: %d read model rows differ from the audit log and tasks", n)
	}
	log.InfoContext(ctx, "read models match the audit log and tasks")
	return nil
}
