//go:build loadtest

package loadtest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ates/ates/services/internal/systemtest"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	analyticsv1 "github.com/ates/ates/gen/analytics/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
)

// config is what the environment may change.
type config struct {
	duration         time.Duration // LOADTEST_DURATION: each workload
	baselineDuration time.Duration // LOADTEST_BASELINE_DURATION: each baseline
	concurrency      int           // LOADTEST_CONCURRENCY: callers of every workload and baseline
	workers          int           // LOADTEST_WORKERS: workers tasks are assigned to
	out              string        // LOADTEST_OUT: the JSON results file
}

func loadConfig(t *testing.T, root string) config {
	t.Helper()
	cfg := config{
		duration:         envDuration(t, "LOADTEST_DURATION", 10*time.Second),
		baselineDuration: envDuration(t, "LOADTEST_BASELINE_DURATION", 3*time.Second),
		concurrency:      envInt(t, "LOADTEST_CONCURRENCY", 64),
		workers:          envInt(t, "LOADTEST_WORKERS", 20),
		out:              os.Getenv("LOADTEST_OUT"),
	}
	if cfg.out == "" {
		cfg.out = fmt.Sprintf("%s/.cache/loadtest/results-%s.json", root, time.Now().UTC().Format("20060102T150405Z"))
	}
	return cfg
}

// TestLoad measures the baselines, then every workload against the running system, and
// prints one table (also written as JSON).
func TestLoad(t *testing.T) {
	root := systemtest.RepoRoot(t)
	cfg := loadConfig(t, root)
	t.Logf("each workload %s, each baseline %s, %d concurrent callers, %d workers", cfg.duration, cfg.baselineDuration, cfg.concurrency, cfg.workers)
	s := startSystem(t, cfg.workers)

	var results []result
	run := func(r result) {
		t.Logf("%s: %d calls, %d errors, %.0f req/s, p50 %.2f ms, p99 %.2f ms", r.Name, r.Calls, r.Errors, r.Throughput, r.P50ms, r.P99ms)
		if r.FirstError != "" {
			t.Logf("%s: first error: %s", r.Name, r.FirstError)
		}
		results = append(results, r)
	}
	for _, r := range []result{healthBaseline(t, cfg), pgBaseline(t, cfg, s), amqpBaseline(t, cfg, s)} {
		r.Kind = "baseline"
		run(r)
	}
	for _, w := range workloads(t, s) {
		r := measure(w.name, cfg.concurrency, cfg.duration, w.call)
		r.Kind, r.Baseline = "workload", w.baseline
		run(r)
		if w.after != nil {
			w.after(r)
		}
	}

	rep := newReport(t, root, cfg, results)
	fmt.Print(rep.table())
	if err := rep.write(cfg.out); err != nil {
		t.Fatalf("write %s: %v", cfg.out, err)
	}
	fmt.Printf("results: %s\n", cfg.out)
	for _, r := range results {
		if r.Calls > 0 && r.Errors*100 > r.Calls {
			t.Errorf("%s: %d of %d calls failed (first: %s)", r.Name, r.Errors, r.Calls, r.FirstError)
		}
	}
}

// workload is one kind of API call, made back to back by every caller.
type workload struct {
	name     string
	baseline string // the baseline its throughput is compared to
	call     func(ctx context.Context, worker, i int) error
	after    func(result) // runs once the workload is measured, before the next
}

// workloads are measured in this order: the creates fill the tasks table that GetTask
// reads; the stats read what the creates' fees put in the ledger and read models.
func workloads(t *testing.T, s *system) []workload {
	var (
		mu  sync.Mutex
		ids []string // tasks stored by the creates with wait
	)
	return []workload{{
		name: "create_task", baseline: baseAMQP,
		call: func(ctx context.Context, w, i int) error {
			_, err := s.tasks.CreateTask(s.asAdmin(ctx), &tasksv1.CreateTaskRequest{Description: fmt.Sprintf("load create %d-%d", w, i)})
			return err
		},
		// The next workload starts once taskhandler has stored every accepted task, so
		// that it does not pay for this one's backlog.
		after: func(r result) { s.waitStored(t, int64(r.Calls-r.Errors)) },
	}, {
		name: "create_task_wait", baseline: basePG,
		call: func(ctx context.Context, w, i int) error {
			resp, err := s.tasks.CreateTask(s.asAdmin(ctx), &tasksv1.CreateTaskRequest{Description: fmt.Sprintf("load create+wait %d-%d", w, i), Wait: true})
			if err == nil {
				mu.Lock()
				ids = append(ids, resp.GetId())
				mu.Unlock()
			}
			return err
		},
	}, {
		name: "get_task", baseline: baseGRPC,
		call: func(ctx context.Context, w, i int) error {
			mu.Lock()
			n := len(ids)
			var id string
			if n > 0 {
				id = ids[(w*7919+i)%n]
			}
			mu.Unlock()
			if id == "" {
				return fmt.Errorf("no stored task to get")
			}
			_, err := s.tasks.GetTask(s.asAdmin(ctx), &tasksv1.GetTaskRequest{Id: id})
			return err
		},
	}, {
		name: "accounting_get_stats", baseline: baseGRPC,
		call: func(ctx context.Context, _, _ int) error {
			_, err := s.accounting.GetStats(s.asAdmin(ctx), &accountingv1.GetStatsRequest{})
			return err
		},
	}, {
		name: "analytics_get_worker_stats", baseline: baseGRPC,
		call: func(ctx context.Context, _, _ int) error {
			_, err := s.analytics.GetWorkerStats(s.asAdmin(ctx), &analyticsv1.GetWorkerStatsRequest{})
			return err
		},
	}}
}

// waitStored waits until the database holds at least n tasks.
func (s *system) waitStored(t *testing.T, n int64) {
	t.Helper()
	var have int64
	ok := waitFor(2*time.Minute, func() bool {
		var err error
		have, err = s.storedTasks(context.Background())
		return err == nil && have >= n
	})
	if !ok {
		t.Fatalf("only %d of %d accepted tasks stored within 2 minutes; see %s", have, n, s.logDir)
	}
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration like 10s", name, v)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
