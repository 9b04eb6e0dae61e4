package broker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffGrowsWithJitterUpToTheCap(t *testing.T) {
	t.Parallel()
	c := &Conn{cfg: Config{ReconnectMin: 200 * time.Millisecond, ReconnectMax: 10 * time.Second}}
	for n := range 70 {
		ceil := min(200*time.Millisecond<<min(n, 30), 10*time.Second)
		for range 20 {
			d := c.backoff(n)
			require.GreaterOrEqual(t, d, ceil/2, "attempt %d", n)
			require.LessOrEqual(t, d, ceil, "attempt %d", n)
		}
	}
}
