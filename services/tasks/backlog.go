package tasks

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/ratelimit"
)

// backlogPoll is how often the gate reads the depth of taskhandler's queue: often, so
// that a held write waits little longer than the backlog takes to shrink.
const backlogPoll = 25 * time.Millisecond

// gate is admission control for writes: backpressure from taskhandler. While its queue
// holds max events or more (taskhandler is that far behind), a write waits for the
// backlog to shrink, up to wait, and is then refused with ResourceExhausted, before
// anything is published: the caller may simply try again. So callers slow down to the
// rate taskhandler applies at, and the queue stays short (what is accepted is applied
// within about max / that rate) instead of growing for as long as callers outpace it.
// When the depth cannot be read (the broker is away) writes are let through: the
// publish then tells the caller what happened.
type gate struct {
	broker *broker.Conn
	queue  string
	max    int
	wait   time.Duration
	depth  atomic.Int64 // -1: unknown
	since  atomic.Int64 // writes admitted since depth was read
	gauge  prometheus.Gauge
}

func newGate(b *broker.Conn, queue string, max int, wait time.Duration, reg prometheus.Registerer) *gate {
	g := &gate{broker: b, queue: queue, max: max, wait: wait, gauge: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ates_tasks_taskhandler_backlog",
		Help: "Events waiting in taskhandler's queue, as the tasks API last read it (-1: unknown); writes wait while it is at ATES_TASKS_MAX_BACKLOG.",
	})}
	g.depth.Store(-1)
	g.gauge.Set(-1)
	if reg != nil {
		reg.MustRegister(g.gauge)
	}
	return g
}

// watch reads the queue's depth every backlogPoll until ctx ends. Without a broker (an
// API built only to read) there is nothing to watch, and writes are let through.
func (g *gate) watch(ctx context.Context) error {
	if g.broker == nil {
		return nil
	}
	t := time.NewTicker(backlogPoll)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		n, err := g.broker.QueueDepth(rctx, g.queue)
		cancel()
		if err != nil {
			n = -1
		}
		g.depth.Store(int64(n))
		g.since.Store(0)
		g.gauge.Set(float64(n))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// admit returns nil once the backlog is below the limit, or a ResourceExhausted status
// when it stays at the limit for the gate's wait (or ctx's error status when ctx ends
// first).
func (g *gate) admit(ctx context.Context) error {
	if g == nil || g.max <= 0 {
		return nil
	}
	var deadline <-chan time.Time
	for {
		// The writes admitted since the last reading count as queued, so that a reading
		// below the limit lets in only what fits, not every caller holding on.
		n := g.depth.Load()
		if n < 0 || n+g.since.Add(1) <= int64(g.max) {
			return nil
		}
		g.since.Add(-1)
		if deadline == nil {
			t := time.NewTimer(g.wait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-deadline:
			// A second is about what taskhandler needs to apply a full backlog.
			return ratelimit.Status(fmt.Sprintf(
				"taskhandler is %d events behind; nothing was changed, try again in a moment", n), time.Second)
		case <-time.After(backlogPoll / 4):
		}
	}
}
