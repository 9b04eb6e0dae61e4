//go:build loadtest

package loadtest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// report is one run: where it ran, with what settings, and every result.
type report struct {
	Time        time.Time `json:"time"`
	Commit      string    `json:"commit"`
	Cores       int       `json:"cores"`
	GoVersion   string    `json:"go_version"`
	Smoke       bool      `json:"smoke,omitempty"`
	Duration    string    `json:"duration"`
	BaselineDur string    `json:"baseline_duration"`
	ReadDur     string    `json:"read_duration"`
	Concurrency int       `json:"concurrency"`
	Workers     int       `json:"workers"`
	Seed        SeedSize  `json:"seed"`
	Results     []result  `json:"results"`
}

// newReport fills in the machine, the ratio of every row to its baseline (any earlier
// row: get_task_auth is read against get_task_noauth) and the verdict on every goal.
func newReport(t *testing.T, root string, cfg config, results []result) *report {
	t.Helper()
	rep := &report{
		Time: time.Now().UTC(), Commit: gitCommit(root), Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		Smoke: cfg.smoke, Duration: cfg.duration.String(), BaselineDur: cfg.baselineDuration.String(),
		ReadDur: cfg.readDuration.String(), Concurrency: cfg.concurrency, Workers: cfg.workers,
		Seed: cfg.seed, Results: results,
	}
	base := map[string]float64{}
	for _, r := range results {
		base[r.Name] = r.Throughput
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		b := base[r.Baseline]
		if r.Baseline != "" && b > 0 {
			ratio := r.Throughput / b
			r.Ratio = &ratio
		}
		if r.goal != nil {
			met := r.goal.check(*r, b)
			r.Goal, r.Met = r.goal.text, &met
		}
	}
	return rep
}

// table renders the results, with a legend.
func (rep *report) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\naTES load test: %d callers, %s per workload, %s per baseline, %s per read; seed %d workers, %d tasks, %d days; %d cores, %s, commit %s\n",
		rep.Concurrency, rep.Duration, rep.BaselineDur, rep.ReadDur, rep.Seed.Workers, rep.Seed.Tasks, rep.Seed.Days,
		rep.Cores, rep.GoVersion, rep.Commit)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "workload\tcalls\terrors\treq/s\tp50 ms\tp99 ms\tbaseline\tratio\tgoal\tmet\t")
	for _, r := range rep.Results {
		baseline, ratio, goal, met := "-", "-", "-", "-"
		if r.Baseline != "" {
			baseline = r.Baseline
		}
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.3f", *r.Ratio)
		}
		if r.Met != nil {
			goal, met = r.Goal, "no"
			if *r.Met {
				met = "yes"
			}
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t\n",
			r.Name, r.Calls, r.Errors, r.Throughput, r.P50ms, r.P99ms, baseline, ratio, goal, met)
	}
	_ = w.Flush()
	b.WriteString(`
The first four rows are the baselines, measured in the same run with the same callers:
grpc_health is a grpc.health.v1 Check on a bare in-process grpc.Server; pg_insert is a
single-row INSERT, a connection per caller (up to 32); amqp_publish_confirm is a
persistent publish that waits for its broker confirm; amqp_consume_ack consumes and acks
a pre-filled queue (req/s is messages acked a second; no latencies, p50/p99 are 0).
seed is the SQL seeding of the read tests (calls = tasks, req/s = tasks a second). A
/1 or /64 suffix is the number of callers of that row. req/s counts successful calls;
p50/p99 are exact percentiles of their latencies; ratio is req/s over the baseline's;
goal is the issue's target for the row and met whether this run reached it.
create_task runs for LOADTEST_WRITE_DURATION; create_task_applied is the tasks stored
meanwhile (per second); create_task_drain the seconds the backlog took after it stopped.
close_bare_sql and daily_close_100k: req/s is workers closed per second (so ratio ≥ 0.5
is "within 2× the bare SQL"); smtp_bare and mail_delivery: mails into Mailpit per second.
`)
	notes := false
	for _, r := range rep.Results {
		if r.Note == "" && r.Usage == nil {
			continue
		}
		if !notes {
			b.WriteString("\nWhere the time went (cores: CPU used by each process while the row ran, 1.00 = one\n" +
				"core; pg: what the database's busy backends were doing, on average per sample):\n")
			notes = true
		}
		fmt.Fprintf(&b, "  %s:", r.Name)
		if r.Note != "" {
			fmt.Fprintf(&b, " %s.", r.Note)
		}
		if r.Usage != nil {
			fmt.Fprintf(&b, " %s", r.Usage.summary())
			if len(r.Usage.TopByFlat) > 0 {
				fmt.Fprintf(&b, "\n      %s profile, top by flat CPU: %s", r.Usage.Profiled, strings.Join(r.Usage.TopByFlat[:min(4, len(r.Usage.TopByFlat))], " | "))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// write stores the report as indented JSON, creating the directory.
func (rep *report) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// gitCommit is HEAD, with "-dirty" when the work tree has changes; "unknown" outside git.
func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		commit += "-dirty"
	}
	return commit
}
