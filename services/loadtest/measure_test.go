//go:build loadtest

package loadtest

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// result is what one workload or baseline measured.
type result struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"` // "baseline", "workload" or "seed"
	Calls      int      `json:"calls"`
	Errors     int      `json:"errors"`
	Seconds    float64  `json:"seconds"`
	Throughput float64  `json:"throughput_rps"` // successful calls per second
	P50ms      float64  `json:"p50_ms"`
	P99ms      float64  `json:"p99_ms"`
	Baseline   string   `json:"baseline,omitempty"`
	Ratio      *float64 `json:"ratio_to_baseline,omitempty"` // Throughput / the baseline's
	FirstError string   `json:"first_error,omitempty"`
	Goal       string   `json:"goal,omitempty"`     // the goal for this row, as text
	Met        *bool    `json:"goal_met,omitempty"` // whether this run met it
	Note       string   `json:"note,omitempty"`
	Usage      *usage   `json:"usage,omitempty"` // where the machine's time went meanwhile
	latencies  []time.Duration
	goal       *goal // judged by newReport, once every baseline is known
}

// measure runs call from concurrency goroutines, each calling it back to back until
// duration has passed, and records every call's latency. Throughput counts the calls
// that succeeded; p50 and p99 are of their latencies, exactly (nearest rank over every
// sample), so an error that fails fast does not flatter them.
func measure(name string, concurrency int, duration time.Duration, call func(ctx context.Context, worker, i int) error) result {
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(duration)
	for w := range concurrency {
		wg.Go(func() {
			var mine []time.Duration
			var myErrs int
			var myFirst error
			for i := 0; time.Now().Before(deadline); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				t0 := time.Now()
				err := call(ctx, w, i)
				d := time.Since(t0)
				cancel()
				if err != nil {
					myErrs++
					if myFirst == nil {
						myFirst = err
					}
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			errs += myErrs
			if firstErr == nil {
				firstErr = myFirst
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := result{Name: name, Calls: len(lat) + errs, Errors: errs, Seconds: elapsed.Seconds(), latencies: lat}
	r.Throughput = float64(len(lat)) / elapsed.Seconds()
	slices.Sort(lat)
	r.P50ms = ms(percentile(lat, 0.50))
	r.P99ms = ms(percentile(lat, 0.99))
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	return r
}

// merge is one result of two measurements of the same calls: calls, errors and time
// added, throughput and percentiles over both.
func merge(a, b result) result {
	r := result{Name: a.Name, Calls: a.Calls + b.Calls, Errors: a.Errors + b.Errors, Seconds: a.Seconds + b.Seconds, FirstError: a.FirstError}
	if r.FirstError == "" {
		r.FirstError = b.FirstError
	}
	r.latencies = slices.Concat(a.latencies, b.latencies)
	slices.Sort(r.latencies)
	r.Throughput = float64(len(r.latencies)) / r.Seconds
	r.P50ms = ms(percentile(r.latencies, 0.50))
	r.P99ms = ms(percentile(r.latencies, 0.99))
	return r
}

// percentile is the nearest-rank percentile of sorted samples: the smallest sample with
// at least p of the samples at or below it; 0 when there are none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }
