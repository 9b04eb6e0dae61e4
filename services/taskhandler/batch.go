package taskhandler

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ates/ates/services/internal/broker"
)

// batcher applies the events the consumer's handlers submit many to a transaction:
// group commit. Every event still has its own processed-events row and its own outcome,
// and its handler returns (and its delivery is acked) only after the transaction that
// applied it committed, so batching changes what a commit costs, not what is applied.
//
// Why: each event's transaction notifies waiting API calls, and PostgreSQL serializes
// the commits of notifying transactions (one WAL flush each, no group commit), which
// capped taskhandler at one event per flush. A batch pays one flush for many events,
// and claims its events, notifies and writes its money rows in one statement each.
//
// A few appliers (ATES_TASKHANDLER_APPLIERS) each run one batch after another; events
// that arrive while they are busy form the next batches. Batches of different appliers
// do not deadlock on the money read model: each writes its money rows in one COPY at
// its end, whose trigger upserts the (worker, day) rows in key order. A deadlock
// elsewhere (two batches completing the same task) fails both batches' events
// transiently, and they are retried.
//
// If an event fails with an error of its own (a constraint it breaks), the batch is
// rolled back; the events before it are applied again, then that event alone (where it
// is recorded as a rejection or reaches the dead-letter queue), then the events after
// it, so that it cannot sink its neighbours. Any other failure (the database went away,
// the commit failed) is every event's: each handler gets the error and the consumer
// middleware retries it.
type batcher struct {
	store   *store
	max     int
	timeout time.Duration
	queue   chan submission
	size    prometheus.Histogram
}

// submission is one event waiting for the batcher, with where its result goes.
type submission struct {
	pending
	done chan result
	span trace.SpanContext // the consumer's span of the event
}

// batchTracer traces the transactions: each is a span under the span of its batch's
// first event (so that an event applied alone, the usual case when idle, has its SQL in
// its own trace), linked to the spans of the others.
func batchTracer() trace.Tracer { return otel.Tracer("github.com/ates/ates/services/taskhandler") }

// startTx starts the span of one transaction applying subs.
func startTx(ctx context.Context, subs []submission) (context.Context, trace.Span) {
	links := make([]trace.Link, 0, len(subs)-1)
	for _, sub := range subs[1:] {
		links = append(links, trace.Link{SpanContext: sub.span})
	}
	ctx = trace.ContextWithSpanContext(ctx, subs[0].span)
	return batchTracer().Start(ctx, "apply events", trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("ates.batch.events", len(subs))))
}

// endTx ends a transaction's span, marking it failed with err.
func endTx(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func newBatcher(s *store, max int, timeout time.Duration, reg prometheus.Registerer) *batcher {
	size := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ates_taskhandler_batch_events",
		Help:    "Events per committed taskhandler transaction (an event that broke a constraint in a batch is counted again in a transaction of its own).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
	})
	if reg != nil {
		reg.MustRegister(size)
	}
	return &batcher{store: s, max: max, timeout: timeout, queue: make(chan submission), size: size}
}

// submit hands one event to the batcher and waits for its result. If ctx ends first the
// caller gets ctx's error (a transient failure: the event is retried, and found applied
// if its batch committed after all).
func (b *batcher) submit(ctx context.Context, id uuid.UUID, fn change) result {
	sub := submission{pending: pending{id: id, fn: fn}, done: make(chan result, 1), span: trace.SpanContextFromContext(ctx)}
	select {
	case b.queue <- sub:
	case <-ctx.Done():
		return result{err: ctx.Err()}
	}
	select {
	case r := <-sub.done:
		return r
	case <-ctx.Done():
		return result{err: ctx.Err()}
	}
}

// run applies batches until stop is closed. It is stopped only once no handler can
// submit any more (the consumer has returned).
func (b *batcher) run(stop <-chan struct{}) {
	batch := make([]submission, 0, b.max)
	for {
		select {
		case <-stop:
			return
		case sub := <-b.queue:
			batch = append(batch[:0], sub)
		}
		// Whatever else is waiting joins, up to the limit; nothing waits for more.
	fill:
		for len(batch) < b.max {
			select {
			case sub := <-b.queue:
				batch = append(batch, sub)
			default:
				break fill
			}
		}
		b.apply(batch)
	}
}

// apply applies one batch, isolating the events that fail on their own.
//
//nolint:contextcheck // a batch holds many handlers' events: no one handler's context may end its transaction
func (b *batcher) apply(batch []submission) {
	for len(batch) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		ctx, span := startTx(ctx, batch)
		evs := make([]pending, len(batch))
		for i, sub := range batch {
			evs[i] = sub.pending
		}
		rs, failed, err := b.store.tx(ctx, evs)
		endTx(span, err)
		cancel()
		switch {
		case err == nil:
			b.size.Observe(float64(len(batch)))
			for i, sub := range batch {
				sub.done <- rs[i]
			}
			return
		case failed == -1 || !broker.IsPermanent(err):
			// Not one event's fault: all of them fail, and are retried.
			for _, sub := range batch {
				sub.done <- result{err: err}
			}
			return
		case failed == moneyFailed:
			// The batch's money rows broke a constraint together: each event goes
			// alone, in order, which finds the one at fault.
			for _, sub := range batch {
				b.alone(sub)
			}
			return
		}
		// One event broke a constraint. The events before it go first (they applied
		// cleanly), then it alone, then the rest: the batch's order is kept, so no event
		// is judged against a neighbour's rollback.
		if failed > 0 {
			b.apply(batch[:failed])
		}
		b.alone(batch[failed])
		batch = batch[failed+1:]
	}
}

// alone applies one event in a transaction of its own.
//
//nolint:contextcheck // like apply, it runs on the batcher's goroutine, under its own timeout
func (b *batcher) alone(sub submission) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	ctx, span := startTx(ctx, []submission{sub})
	r := b.store.alone(ctx, sub.id, sub.fn)
	endTx(span, r.err)
	if r.err == nil {
		b.size.Observe(1)
	}
	sub.done <- r
}
