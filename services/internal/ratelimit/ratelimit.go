// Package ratelimit holds the abuse limits of the aTES APIs: token buckets kept per key
// (a client address, a user) in a bounded LRU, refusals counted by limit name, and
// refusals answered as ResourceExhausted with the delay after which to retry, which the
// REST gateway turns into HTTP 429 with a Retry-After header.
//
// Buckets live in the memory of one process: with several replicas behind a load
// balancer each replica keeps its own, so a client spread over n replicas gets up to n
// times a limit.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Limit is a token bucket: Burst events at once, then one more every Every. A zero
// Burst means no limit at all.
type Limit struct {
	Burst int
	Every time.Duration
}

// Off reports whether the limit lets everything through.
func (l Limit) Off() bool { return l.Burst <= 0 }

// MaxKeys bounds how many keys a Limiter remembers; the least recently used is
// forgotten first. Forgetting a key only forgives it (a fresh key has a full bucket),
// and a key in use is recent, so the bound costs nothing but memory: about 200 bytes
// a key, some 10 MB for a full limiter.
const MaxKeys = 50_000

// Limiter applies one Limit to each key apart. A nil *Limiter, which New returns for a
// Limit that is off, lets everything through.
type Limiter struct {
	what    string
	limit   Limit
	buckets *lru.Cache[string, *bucket]
	refused prometheus.Counter
	now     func() time.Time
}

// bucket is one key's tokens as of at. held counts the tokens taken by calls still in
// flight (Take); changed is closed, and replaced, whenever one of them ends.
type bucket struct {
	mu      sync.Mutex
	tokens  float64
	at      time.Time
	held    int
	changed chan struct{}
}

// Metrics counts refusals for a service's limiters.
type Metrics struct {
	refused *prometheus.CounterVec
}

// NewMetrics registers ates_ratelimit_refused_total on reg (nil: not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_ratelimit_refused_total",
		Help: "Calls refused with ResourceExhausted (HTTP 429) by an abuse limit, by limit name.",
	}, []string{"limit"})}
	if reg != nil {
		reg.MustRegister(m.refused)
	}
	return m
}

// New returns a Limiter of l, counted under name; what says what was refused ("too
// many <what>") in the refusal's message.
func (m *Metrics) New(name, what string, l Limit) *Limiter {
	if l.Off() {
		return nil
	}
	buckets, _ := lru.New[string, *bucket](MaxKeys) // errors only for a size below 1
	return &Limiter{what: what, limit: l, buckets: buckets, refused: m.refused.WithLabelValues(name), now: time.Now}
}

// Refuse counts a refusal by a limit that is not a token bucket (e.g. one call at a
// time) under name and returns the status to answer.
func (m *Metrics) Refuse(name, msg string, retryAfter time.Duration) error {
	m.refused.WithLabelValues(name).Inc()
	return Status(msg, retryAfter)
}

func (l *Limiter) bucket(key string, now time.Time) *bucket {
	if b, ok := l.buckets.Get(key); ok {
		return b
	}
	b := &bucket{tokens: float64(l.limit.Burst), at: now, changed: make(chan struct{})}
	if prev, ok, _ := l.buckets.PeekOrAdd(key, b); ok {
		return prev
	}
	return b
}

// refill adds the tokens earned since b.at; the caller holds b.mu.
func (l *Limiter) refill(b *bucket, now time.Time) {
	if now.After(b.at) {
		b.tokens = min(float64(l.limit.Burst), b.tokens+float64(now.Sub(b.at))/float64(l.limit.Every))
		b.at = now
	}
}

// Allow takes a token from key's bucket, or returns the ResourceExhausted status to
// answer, which says how long until the bucket holds one again. A refusal takes nothing.
func (l *Limiter) Allow(key string) error {
	if l == nil {
		return nil
	}
	now := l.now()
	b := l.bucket(key, now)
	b.mu.Lock()
	defer b.mu.Unlock()
	l.refill(b, now)
	if b.tokens < 1 {
		return l.refuse(1 - b.tokens)
	}
	b.tokens--
	return nil
}

// Take limits only some outcomes of a call (failed logins): the call takes a token
// before it runs, and done(true) gives it back when the outcome is one that does not
// count. Taking first, rather than checking first and charging after, is what keeps
// calls sent at once within the burst: each call in flight holds a token. So that calls
// which will give their tokens back do not refuse others meanwhile, a call that finds
// the bucket empty while calls in flight hold tokens waits (until ctx ends) for them to
// finish, and is refused only if the bucket is empty with none in flight. done must be
// called once the outcome is known; later calls do nothing.
func (l *Limiter) Take(ctx context.Context, key string) (done func(giveBack bool), err error) {
	if l == nil {
		return func(bool) {}, nil
	}
	b := l.bucket(key, l.now())
	for {
		b.mu.Lock()
		l.refill(b, l.now())
		if b.tokens >= 1 {
			b.tokens--
			b.held++
			b.mu.Unlock()
			var once sync.Once
			return func(giveBack bool) { once.Do(func() { l.release(b, giveBack) }) }, nil
		}
		if b.held == 0 {
			defer b.mu.Unlock()
			return nil, l.refuse(1 - b.tokens)
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}

// release ends a Take, giving its token back or not, and wakes the calls waiting.
func (l *Limiter) release(b *bucket, giveBack bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if giveBack {
		l.refill(b, l.now())
		b.tokens = min(float64(l.limit.Burst), b.tokens+1)
	}
	b.held--
	close(b.changed)
	b.changed = make(chan struct{})
}

func (l *Limiter) refuse(missing float64) error {
	l.refused.Inc()
	wait := time.Duration(math.Ceil(missing * float64(l.limit.Every)))
	return Status(fmt.Sprintf("too many %s; try again in %ds", l.what, RetryAfterSeconds(wait)), wait)
}

// Status is the ResourceExhausted status of a refused call: its message and an
// errdetails.RetryInfo carrying retryAfter, which gRPC clients read and the REST
// gateway sends as the Retry-After header.
func Status(msg string, retryAfter time.Duration) error {
	st := status.New(codes.ResourceExhausted, msg)
	withDelay, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
	if err != nil { // only for a detail that cannot be marshaled
		return st.Err()
	}
	return withDelay.Err()
}

// RetryAfter is the delay an error's RetryInfo asks for, if it carries one.
func RetryAfter(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// RetryAfterSeconds is a delay as HTTP's Retry-After gives it: whole seconds, rounded
// up, at least 1 (a client told 0 would retry at once).
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// AddrKey is the key of a client address: the address itself for IPv4, and its /64
// for IPv6, where one subscriber usually holds a whole /64. An unknown (zero) address
// is one key of its own.
func AddrKey(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is6():
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
