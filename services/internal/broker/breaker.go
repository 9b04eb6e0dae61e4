package broker

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

const (
	// probeTimeout bounds one check of the dependency behind a consumer. Generous: a
	// slow database that answers is up, and events go on being applied.
	probeTimeout = 5 * time.Second
	probeMin     = 100 * time.Millisecond
	probeMax     = 2 * time.Second
)

// breaker stops a consumer from taking deliveries while the dependency its handlers
// need (the database) does not answer. A transient handler error trips it: it checks
// the dependency at once, and if that fails too it opens; it then checks again with
// capped, jittered backoff and closes as soon as the dependency answers. An error the
// dependency check does not confirm (a deadlock, one slow statement) leaves it closed.
type breaker struct {
	probe func(context.Context) error // nil: never opens
	log   *slog.Logger
	// onChange reports the state to metrics.
	onChange func(open bool)

	mu     sync.Mutex
	open   bool
	opened chan struct{} // closed when the breaker opens; replaced when it closes
	closed chan struct{} // closed when the breaker closes; replaced when it opens
}

func newBreaker(probe func(context.Context) error, log *slog.Logger, onChange func(bool)) *breaker {
	closed := make(chan struct{})
	close(closed)
	return &breaker{probe: probe, log: log, onChange: onChange, opened: make(chan struct{}), closed: closed}
}

// state returns whether the breaker is open and the channels that signal its next change.
func (b *breaker) state() (open bool, opened, closed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open, b.opened, b.closed
}

// isOpen reports whether the consumer should leave deliveries alone.
func (b *breaker) isOpen() bool {
	open, _, _ := b.state()
	return open
}

// trip reports whether cause means the dependency is down: if the breaker is open
// already, or the dependency check fails now (then it opens, and a watcher bounded by
// life closes it once the dependency answers).
func (b *breaker) trip(life context.Context, cause error) bool {
	if b.probe == nil {
		return false
	}
	if b.isOpen() {
		return true
	}
	err := b.check(life)
	if err == nil || life.Err() != nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		return true
	}
	b.open = true
	close(b.opened)
	b.closed = make(chan struct{})
	b.onChange(true)
	b.log.Warn("dependency down: consumer paused until it answers", "cause", cause, "check", err)
	go b.watch(life)
	return true
}

// watch checks the dependency with backoff until it answers or life ends.
func (b *breaker) watch(life context.Context) {
	start := time.Now()
	for n := 0; ; n++ {
		t := time.NewTimer(jitter(min(probeMin<<min(n, 16), probeMax)))
		select {
		case <-life.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := b.check(life); err != nil {
			b.log.Debug("dependency still down", "check", err)
			continue
		}
		b.mu.Lock()
		b.open = false
		close(b.closed)
		b.opened = make(chan struct{})
		b.onChange(false)
		b.mu.Unlock()
		b.log.Info("dependency answers again: consumer resumes", "paused_for", time.Since(start).Round(time.Millisecond))
		return
	}
}

func (b *breaker) check(life context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(life), probeTimeout)
	defer cancel()
	return b.probe(ctx)
}

// wait blocks until the breaker is closed or ctx ends.
func (b *breaker) wait(ctx context.Context) error {
	_, _, closed := b.state()
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jitter returns a random duration between d/2 and d, so that many consumers do not
// retry in lockstep.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(d-half+1) //nolint:gosec // G404: retry jitter only spreads load; nothing depends on it being unpredictable
}
