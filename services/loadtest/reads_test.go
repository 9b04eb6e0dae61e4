//go:build loadtest

package loadtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	analyticsv1 "github.com/ates/ates/gen/analytics/v1"
)

// The goals for every accounting and analytics read on a seeded day (1 M tasks,
// 1,000 workers): p99 within 10 ms for one caller, 2,000 req/s for 64.
const (
	readP99      = 10 * time.Millisecond
	readRPS      = 2000
	readCallers  = 64
	readSpanDays = 30 // the range of the range reads: the last 30 days, today included
)

// seedPhase seeds the database for the reads (see Seed), after the write workloads so
// that they ran on a small database, then runs `ates verify` and fails the run if the
// read models differ from what the audit log and tasks say. Its row times the seeding.
func seedPhase(t *testing.T, cfg config, s *system) []result {
	t.Helper()
	ctx := context.Background()
	var author uuid.UUID
	if err := s.db.QueryRow(ctx, "SELECT id FROM users WHERE role = 'admin' ORDER BY created_at LIMIT 1").Scan(&author); err != nil {
		t.Fatalf("find the admin: %v", err)
	}
	t.Logf("seeding %d workers, %d tasks over %d days", cfg.seed.Workers, cfg.seed.Tasks, cfg.seed.Days)
	st, err := Seed(ctx, s.db, cfg.seed, author, businessTZ, time.Now())
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Logf("seeded %d tasks, %d audit rows, %d processed events in %s (%s), vacuum+analyze %s",
		st.Tasks, st.LogRows, st.Events, st.Insert.Round(time.Millisecond), strings.Join(st.Steps, ", "), st.Vacuum.Round(time.Millisecond))
	start := time.Now()
	verify := startProc(t, s.bin, s.logDir, "verify", s.env(), "verify")
	if err := verify.wait(5 * time.Minute); err != nil {
		t.Fatalf("ates verify after seeding: %v; see %s", err, verify.logPath)
	}
	t.Logf("ates verify: read models match (%s)", time.Since(start).Round(time.Millisecond))
	if err := s.loadSeededWorkers(ctx); err != nil {
		t.Fatalf("read the seeded workers: %v", err)
	}
	total := st.Insert + st.Vacuum
	return []result{{
		Name: "seed", Kind: "seed", Calls: int(st.Tasks), Seconds: total.Seconds(),
		Throughput: float64(st.Tasks) / total.Seconds(),
		Note: fmt.Sprintf("%d workers, %d tasks, %d days: insert %s, vacuum %s, then ates verify %s",
			cfg.seed.Workers, st.Tasks, cfg.seed.Days, st.Insert.Round(time.Millisecond),
			st.Vacuum.Round(time.Millisecond), time.Since(start).Round(time.Millisecond)),
	}}
}

// loadSeededWorkers remembers the workers with money today, for GetBalance.
func (s *system) loadSeededWorkers(ctx context.Context) error {
	rows, err := s.db.Query(ctx, "SELECT user_id FROM worker_day_totals WHERE business_date = (now() AT TIME ZONE $1)::date ORDER BY user_id", businessTZ)
	if err != nil {
		return err
	}
	defer rows.Close()
	s.seeded = s.seeded[:0]
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return err
		}
		s.seeded = append(s.seeded, id.String())
	}
	return rows.Err()
}

// readPhase measures every accounting and analytics read RPC on the seeded database,
// each with one caller (goal: p99) and with 64 (goal: req/s), as the admin over gRPC.
func readPhase(t *testing.T, cfg config, s *system) []result {
	t.Helper()
	if len(s.seeded) == 0 {
		t.Fatalf("no seeded worker has money today: the reads need seedPhase first")
	}
	var out []result
	for _, rd := range reads(s) {
		// One call first, so that a broken read fails here rather than as 100 % errors.
		if err := rd.call(context.Background(), 0, 0); err != nil {
			t.Errorf("%s: %v", rd.name, err)
		}
		for _, callers := range []int{1, readCallers} {
			r := measureProbed(cfg, s, strings.SplitN(rd.name, "_", 2)[0], fmt.Sprintf("%s/%d", rd.name, callers), callers, cfg.readDuration, rd.call)
			r.Kind, r.Baseline = "workload", baseGRPC
			r.goal = atLeastRPS(readRPS)
			if callers == 1 {
				r.goal = p99Within(readP99)
			}
			out = append(out, r)
		}
	}
	return out
}

// read is one read RPC with its arguments.
type read struct {
	name string
	call func(ctx context.Context, w, i int) error
}

// reads are every read RPC of the accounting and analytics APIs, on today or the last
// readSpanDays days.
func reads(s *system) []read {
	now := time.Now().UTC()
	today := now.Format(time.DateOnly)
	from := now.AddDate(0, 0, -(readSpanDays - 1)).Format(time.DateOnly)
	return []read{{
		// A worker's balance and first page of today's entries, a different worker each call.
		name: "accounting_get_balance",
		call: func(ctx context.Context, w, i int) error {
			user := s.seeded[(w*7919+i)%len(s.seeded)]
			_, err := s.accounting.GetBalance(s.asAdmin(ctx), &accountingv1.GetBalanceRequest{UserId: user, Date: today})
			return err
		},
	}, {
		name: "accounting_get_stats",
		call: func(ctx context.Context, _, _ int) error {
			_, err := s.accounting.GetStats(s.asAdmin(ctx), &accountingv1.GetStatsRequest{Date: today})
			return err
		},
	}, {
		name: "analytics_get_worker_stats",
		call: func(ctx context.Context, _, _ int) error {
			_, err := s.analytics.GetWorkerStats(s.asAdmin(ctx), &analyticsv1.GetWorkerStatsRequest{Date: today})
			return err
		},
	}, {
		name: "analytics_get_company_earnings",
		call: func(ctx context.Context, _, _ int) error {
			_, err := s.analytics.GetCompanyEarnings(s.asAdmin(ctx), &analyticsv1.GetCompanyEarningsRequest{From: from, To: today})
			return err
		},
	}, {
		name: "analytics_get_top_task",
		call: func(ctx context.Context, _, _ int) error {
			_, err := s.analytics.GetTopTask(s.asAdmin(ctx), &analyticsv1.GetTopTaskRequest{From: from, To: today})
			return err
		},
	}}
}

// readRows are the names readPhase reports, for the smoke test's check.
func readRows() []string {
	var names []string
	for _, rd := range reads(nil) {
		names = append(names, rd.name+"/1", fmt.Sprintf("%s/%d", rd.name, readCallers))
	}
	return names
}
