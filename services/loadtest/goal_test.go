//go:build loadtest

package loadtest

import (
	"fmt"
	"time"
)

// goal is one of the targets for a row: a text for the table and a check that
// newReport runs with the row's baseline throughput (0 when it has none).
type goal struct {
	text  string
	check func(r result, baseRPS float64) bool
}

// p99Within is a latency goal: p99 at most d.
func p99Within(d time.Duration) *goal {
	return &goal{
		text:  fmt.Sprintf("p99≤%s", d),
		check: func(r result, _ float64) bool { return r.Calls > 0 && r.P99ms <= ms(d) },
	}
}

// atLeastRPS is a throughput goal: at least n successful calls a second.
func atLeastRPS(n float64) *goal {
	return &goal{
		text:  fmt.Sprintf("≥%.0f/s", n),
		check: func(r result, _ float64) bool { return r.Throughput >= n },
	}
}

// atLeastOfBaseline is a throughput goal relative to the row's baseline: at least x
// times its req/s.
func atLeastOfBaseline(x float64, baseline string) *goal {
	return &goal{
		text:  fmt.Sprintf("≥%.2f×%s", x, baseline),
		check: func(r result, base float64) bool { return base > 0 && r.Throughput >= x*base },
	}
}

// costAtMost is an overhead goal: a call costs at most x times its baseline's, cost
// being the time per call at the same number of callers, so the baseline's req/s over
// the row's.
func costAtMost(x float64, baseline string) *goal {
	return &goal{
		text:  fmt.Sprintf("cost≤%.2f×%s", x, baseline),
		check: func(r result, base float64) bool { return r.Throughput > 0 && base/r.Throughput <= x },
	}
}
