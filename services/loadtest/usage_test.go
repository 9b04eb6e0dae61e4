//go:build loadtest

package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// usage is where the machine's time went while one workload ran: the CPU each process
// used (in cores: 1.0 is one core busy for the whole workload), what PostgreSQL's busy
// backends were waiting on, and, with LOADTEST_PROFILE set, the hottest functions of
// the service the workload is about (a CPU profile kept next to the results). It names
// a workload's bottleneck: on a small machine, usually whoever holds the cores.
type usage struct {
	Cores      map[string]float64 `json:"cores"`                // process → cores used
	PGWaits    map[string]int     `json:"pg_waits,omitempty"`   // "type:event" of active backends → samples
	PGSamples  int                `json:"pg_samples,omitempty"` // pg_stat_activity samples taken
	Profiled   string             `json:"profiled,omitempty"`   // the service profiled
	Profile    string             `json:"profile,omitempty"`    // its CPU profile
	TopByFlat  []string           `json:"top_flat,omitempty"`   // `go tool pprof -top` lines
	ProfileErr string             `json:"profile_error,omitempty"`
}

// summary is the usage in one line for the table's legend: the busiest processes and
// the commonest PostgreSQL wait.
func (u *usage) summary() string {
	if u == nil {
		return ""
	}
	type kv struct {
		k string
		v float64
	}
	var cores []kv
	for k, v := range u.Cores {
		if v >= 0.05 {
			cores = append(cores, kv{k, v})
		}
	}
	slices.SortFunc(cores, func(a, b kv) int { return int((b.v - a.v) * 1000) })
	var parts []string
	for _, c := range cores {
		parts = append(parts, fmt.Sprintf("%s %.2f", c.k, c.v))
	}
	s := "cores: " + strings.Join(parts, ", ")
	if u.PGSamples > 0 {
		var waits []kv
		for k, v := range u.PGWaits {
			waits = append(waits, kv{k, float64(v)})
		}
		slices.SortFunc(waits, func(a, b kv) int { return int(b.v - a.v) })
		var w []string
		for i, x := range waits {
			if i == 3 {
				break
			}
			w = append(w, fmt.Sprintf("%s %.1f", x.k, x.v/float64(u.PGSamples)))
		}
		if len(w) > 0 {
			s += "; pg backends busy on (avg per sample): " + strings.Join(w, ", ")
		}
	}
	return s
}

// probe watches one workload; stop returns what it saw.
type probe struct {
	s       *system
	start   time.Time
	cpu0    map[string]float64
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	waits   map[string]int
	samples int
	u       usage
}

// startProbe starts watching; profile names the service whose CPU profile to take for
// seconds (none when empty or when LOADTEST_PROFILE is unset).
func startProbe(s *system, profile string, seconds int, outDir string) *probe {
	p := &probe{s: s, start: time.Now(), cpu0: cpuSeconds(s), done: make(chan struct{}), waits: map[string]int{}}
	p.wg.Go(p.samplePG)
	if profile != "" && os.Getenv("LOADTEST_PROFILE") != "" && s.procs[profile] != nil && seconds > 0 {
		p.u.Profiled = profile
		p.wg.Go(func() { p.takeProfile(profile, seconds, outDir) })
	}
	return p
}

// stop ends the watch and returns the usage.
func (p *probe) stop() *usage {
	elapsed := time.Since(p.start).Seconds()
	cpu1 := cpuSeconds(p.s)
	close(p.done)
	p.wg.Wait()
	p.u.Cores = map[string]float64{}
	for k, v := range cpu1 {
		if d := v - p.cpu0[k]; d > 0 && elapsed > 0 {
			p.u.Cores[k] = float64(int(d/elapsed*100+0.5)) / 100
		}
	}
	p.u.PGWaits, p.u.PGSamples = p.waits, p.samples
	return &p.u
}

// samplePG counts, every 100 ms, what the private database's active backends wait on
// ("CPU" when they wait on nothing: running).
func (p *probe) samplePG() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rows, err := p.s.db.Query(ctx, `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU')
			FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()`)
		if err == nil {
			p.mu.Lock()
			p.samples++
			for rows.Next() {
				var w string
				if rows.Scan(&w) == nil {
					p.waits[w]++
				}
			}
			p.mu.Unlock()
			rows.Close()
		}
		cancel()
	}
}

// takeProfile fetches a CPU profile from the service's /debug/pprof and keeps the top
// of `go tool pprof -top`.
func (p *probe) takeProfile(name string, seconds int, outDir string) {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.s.procs[name].httpAddr, seconds)
	client := &http.Client{Timeout: time.Duration(seconds+10) * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		p.u.ProfileErr = err.Error()
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		p.u.ProfileErr = fmt.Sprintf("%s: %v %s", url, err, resp.Status)
		return
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		p.u.ProfileErr = err.Error()
		return
	}
	path := filepath.Join(outDir, fmt.Sprintf("%s-%s.pprof", name, time.Now().UTC().Format("150405.000")))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		p.u.ProfileErr = err.Error()
		return
	}
	p.u.Profile = path
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=8", p.s.bin, path).Output()
	if err != nil {
		p.u.ProfileErr = fmt.Sprintf("go tool pprof: %v", err)
		return
	}
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		if strings.Contains(l, "flat%") {
			for _, top := range lines[i+1:] {
				if top = strings.TrimSpace(top); top != "" {
					p.u.TopByFlat = append(p.u.TopByFlat, strings.Join(strings.Fields(top), " "))
				}
			}
			break
		}
	}
}

// cpuSeconds is the user+system CPU time so far of every service process, of
// PostgreSQL (all its processes), of RabbitMQ (beam.smp) and of this load generator.
func cpuSeconds(s *system) map[string]float64 {
	out := map[string]float64{}
	for name, p := range s.procs {
		if p.cmd != nil && p.cmd.Process != nil {
			if v, ok := procCPU(p.cmd.Process.Pid); ok {
				out[name] = v
			}
		}
	}
	if v, ok := procCPU(os.Getpid()); ok {
		out["loadgen"] = v
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		var key string
		switch string(bytes.TrimSpace(comm)) {
		case "postgres":
			key = "postgres"
		case "beam.smp":
			key = "rabbitmq"
		default:
			continue
		}
		if v, ok := procCPU(pid); ok {
			out[key] += v
		}
	}
	return out
}

// procCPU reads utime+stime of a process from /proc/<pid>/stat, in seconds. (Processes
// that end between two readings, such as short-lived PostgreSQL backends, drop out:
// the figure is a floor.)
func procCPU(pid int) (float64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command may contain spaces; fields start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (utime + stime) / 100, true // USER_HZ is 100 on Linux
}

// measureProbed is measure with a probe watching: the result carries the usage, and
// with LOADTEST_PROFILE set a CPU profile of service (the one the workload is about).
func measureProbed(cfg config, s *system, service, name string, concurrency int, duration time.Duration, call func(ctx context.Context, worker, i int) error) result {
	seconds := int(duration.Seconds()) - 1
	p := startProbe(s, service, min(seconds, 30), filepath.Join(filepath.Dir(cfg.out), "profiles"))
	r := measure(name, concurrency, duration, call)
	r.Usage = p.stop()
	return r
}
