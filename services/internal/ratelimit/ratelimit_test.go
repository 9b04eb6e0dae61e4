package ratelimit

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// clock is a hand-moved time for a Limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// newLimiter is a Limiter of l on a clock the test moves.
func newLimiter(t *testing.T, l Limit) (*Limiter, *clock) {
	t.Helper()
	lim := NewMetrics(prometheus.NewRegistry()).New("test_limit", "tests", l)
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	lim.now = c.now
	return lim, c
}

func TestAllowTakesABurstThenOneEveryInterval(t *testing.T) {
	t.Parallel()
	lim, clk := newLimiter(t, Limit{Burst: 3, Every: 2 * time.Second})
	for i := range 3 {
		require.NoError(t, lim.Allow("a"), "call %d of the burst", i+1)
	}
	err := lim.Allow("a")
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.ErrorContains(t, err, "too many tests; try again in 2s")
	delay, ok := RetryAfter(err)
	require.True(t, ok)
	require.Equal(t, 2*time.Second, delay)
	require.NoError(t, lim.Allow("b"), "each key has its own bucket")

	clk.advance(1500 * time.Millisecond)
	delay, _ = RetryAfter(lim.Allow("a"))
	require.Equal(t, 500*time.Millisecond, delay, "the delay shrinks as the bucket refills")
	clk.advance(500 * time.Millisecond)
	require.NoError(t, lim.Allow("a"), "one more after the interval")
	require.Error(t, lim.Allow("a"), "and only one")
	require.Equal(t, 3.0, testutil.ToFloat64(lim.refused))
}

func TestTakeHoldsATokenUntilDone(t *testing.T) {
	t.Parallel()
	lim, clk := newLimiter(t, Limit{Burst: 2, Every: 10 * time.Second})
	ctx := context.Background()
	first, err := lim.Take(ctx, "a")
	require.NoError(t, err)
	second, err := lim.Take(ctx, "a")
	require.NoError(t, err)

	// A third call waits for the two in flight: the first gives its token back, and the
	// third takes it.
	third := make(chan error, 1)
	go func() {
		done, err := lim.Take(ctx, "a")
		if err == nil {
			done(false)
		}
		third <- err
	}()
	select {
	case err := <-third:
		t.Fatalf("the third call did not wait for the two in flight: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	first(true)
	first(true)
	require.NoError(t, <-third, "a token given back is taken by the call waiting")

	// The second keeps its token: the bucket is empty with nothing in flight, and
	// refuses at once.
	second(false)
	_, err = lim.Take(ctx, "a")
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	delay, _ := RetryAfter(err)
	require.Equal(t, 10*time.Second, delay)

	// A wait ends with the caller's context.
	clk.advance(10 * time.Second)
	held, err := lim.Take(ctx, "a")
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = lim.Take(short, "a")
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	held(true)

	clk.advance(time.Hour)
	for range 2 {
		done, err := lim.Take(ctx, "a")
		require.NoError(t, err)
		done(true)
	}
	require.NoError(t, lim.Allow("a"))
	require.NoError(t, lim.Allow("a"))
	require.Error(t, lim.Allow("a"), "tokens given back never fill a bucket past its burst")
	require.Equal(t, 2.0, testutil.ToFloat64(lim.refused))
}

func TestOffLetsEverythingThrough(t *testing.T) {
	t.Parallel()
	lim := NewMetrics(nil).New("off", "calls", Limit{Burst: 0, Every: time.Second})
	require.Nil(t, lim)
	for range 100 {
		require.NoError(t, lim.Allow("a"))
		done, err := lim.Take(context.Background(), "a")
		require.NoError(t, err)
		done(false)
	}
}

func TestKeysAreBounded(t *testing.T) {
	t.Parallel()
	lim, _ := newLimiter(t, Limit{Burst: 1, Every: time.Hour})
	require.NoError(t, lim.Allow("first"))
	for i := range MaxKeys {
		require.NoError(t, lim.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()))
	}
	require.Equal(t, MaxKeys, lim.buckets.Len())
	require.NoError(t, lim.Allow("first"), "the least recently used key was forgotten, and forgiven")
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]int{
		0:                       1,
		time.Millisecond:        1,
		time.Second:             1,
		1001 * time.Millisecond: 2,
		30 * time.Second:        30,
	} {
		require.Equal(t, want, RetryAfterSeconds(d), "%s", d)
	}
	_, ok := RetryAfter(status.Error(codes.ResourceExhausted, "no delay"))
	require.False(t, ok)
}

func TestAddrKey(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
	} {
		require.Equal(t, want, AddrKey(netip.MustParseAddr(addr)), addr)
	}
	require.Equal(t, "unknown", AddrKey(netip.Addr{}))
}
