package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	// DefaultRetryMin is the shortest delay before a failed event is handled again
	// (ConsumerConfig.RetryMin).
	DefaultRetryMin = 500 * time.Millisecond
	// DefaultRetryMax is the longest such delay (ConsumerConfig.RetryMax).
	DefaultRetryMax = 5 * time.Second

	// copyTimeout bounds republishing a delivery to its retry or dead-letter queue.
	copyTimeout = 10 * time.Second
)

// inProcessRetries are the pauses (jittered) before each retry of a transient failure
// while the dependency answers (a deadlock, a serialization failure, one slow
// statement); after the last one the event goes through the retry queue.
var inProcessRetries = []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, time.Second}

// errPaused is why deliveries taken while the breaker is open are handed back unhandled.
var errPaused = errors.New("consumer paused: its dependency does not answer")

// ConsumerConfig describes one consumer of a queue declared with [Conn.DeclareQueue].
type ConsumerConfig struct {
	// Queue is the queue's name.
	Queue string
	// Prefetch is how many events are handled at once (1 handles them in queue order).
	Prefetch int
	// Timeout bounds one attempt of one event's handler.
	Timeout time.Duration
	// Routes map each routing key to its typed handler (see [On]). A message under any
	// other key is dead-lettered.
	Routes []Route
	// Verify, when set, holds the keys of the producer the consumer trusts: an event
	// without a valid signature by one of them is dead-lettered before it is decoded
	// (ErrUnverified). Nil accepts unsigned events.
	Verify *Keyring
	// Probe checks the dependency the handlers need (the database); nil disables the
	// circuit breaker. While it fails the consumer takes no deliveries.
	Probe func(context.Context) error
	// RetryMin and RetryMax bound the capped, jittered exponential delay before a failed
	// event is handled again; DefaultRetryMin and DefaultRetryMax if zero.
	RetryMin, RetryMax time.Duration
	// Metrics receives the consumer's metrics; nil keeps them unregistered.
	Metrics prometheus.Registerer
}

// consumer is one running Consume: the middleware every delivery goes through.
type consumer struct {
	conn      *Conn
	cfg       ConsumerConfig
	spec      QueueSpec
	routes    map[string]Route
	validator protovalidate.Validator
	breaker   *breaker
	metrics   *consumerMetrics
	log       *slog.Logger
	life      context.Context // Consume's context: the consumer's lifetime
}

// Consume handles the messages of cfg.Queue until ctx is cancelled. Every delivery goes
// through the same steps: route by routing key → decode → validate → handle (under
// cfg.Timeout, panics recovered) → classify → settle:
//
//   - success (nil): ack;
//   - a permanent error ([IsPermanent]: the message can never be applied): copied to the
//     dead-letter queue with the reason, then acked;
//   - any other error is transient and never dead-lettered, however long it lasts: the
//     consumer first asks cfg.Probe whether the dependency is down. If it is, the
//     circuit breaker opens: the consumer stops taking deliveries, hands back the ones
//     it holds and resumes once the probe answers. If it is not, the event is retried in
//     process a few times, then copied to the retry queue with a capped, jittered
//     delay (it comes back through the queue) and acked.
//
// Up to cfg.Prefetch events are handled at once. Consume re-subscribes after reconnects.
// When ctx is cancelled it stops taking messages, waits for running handlers and returns
// nil; it returns ErrClosed if c is closed first. Handlers get a context with ctx's
// values but not its cancellation, so a shutdown does not abort an event half-way.
func (c *Conn) Consume(ctx context.Context, cfg ConsumerConfig) error {
	spec, ok := c.queueSpec(cfg.Queue)
	switch {
	case !ok:
		return fmt.Errorf("consume %s: queue not declared through this connection", cfg.Queue)
	case cfg.Prefetch < 1:
		return fmt.Errorf("consume %s: prefetch %d < 1", cfg.Queue, cfg.Prefetch)
	case cfg.Timeout <= 0:
		return fmt.Errorf("consume %s: timeout %s must be positive", cfg.Queue, cfg.Timeout)
	case len(cfg.Routes) == 0:
		return fmt.Errorf("consume %s: no routes", cfg.Queue)
	case cfg.RetryMin < 0 || cfg.RetryMax < 0:
		return fmt.Errorf("consume %s: negative retry delay", cfg.Queue)
	}
	cfg.RetryMin = cmp.Or(cfg.RetryMin, DefaultRetryMin)
	cfg.RetryMax = max(cmp.Or(cfg.RetryMax, DefaultRetryMax), cfg.RetryMin)
	routes := make(map[string]Route, len(cfg.Routes))
	for _, r := range cfg.Routes {
		if _, dup := routes[r.key]; dup || r.decode == nil {
			return fmt.Errorf("consume %s: route %q given twice or empty", cfg.Queue, r.key)
		}
		routes[r.key] = r
	}
	validator, err := protovalidate.New()
	if err != nil {
		return fmt.Errorf("consume %s: build validator: %w", cfg.Queue, err)
	}
	log := c.log.With("queue", cfg.Queue)
	cons := &consumer{
		conn: c, cfg: cfg, spec: spec, routes: routes, validator: validator, log: log, life: ctx,
		metrics: newConsumerMetrics(cfg.Metrics, c, cfg.Queue),
	}
	cons.breaker = newBreaker(cfg.Probe, log, func(open bool) {
		paused := 0.0
		if open {
			paused = 1
		}
		cons.metrics.paused.Set(paused)
	})
	return cons.run(ctx)
}

// run subscribes, and subscribes again after lost connections and pauses, until ctx ends.
func (cons *consumer) run(ctx context.Context) error {
	c := cons.conn
	for failures := 0; ; {
		if cons.breaker.wait(ctx) != nil {
			return nil
		}
		s, err := c.waitSession(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("consume %s: %w", cons.spec.Name, err)
		}
		subscribed, err := cons.session(ctx, s)
		switch {
		case ctx.Err() != nil:
			return nil
		case c.ctx.Err() != nil:
			return fmt.Errorf("consume %s: %w", cons.spec.Name, ErrClosed)
		case errors.Is(err, errPaused):
			continue // run waits for the breaker to close
		}
		if subscribed {
			failures = 0
		}
		cons.log.Warn("consumer interrupted; subscribing again", "error", err)
		// Not a hot loop if the queue is gone or the channel keeps failing; if the
		// connection is gone, waitSession blocks anyway.
		t := time.NewTimer(c.backoff(failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		failures++
	}
}

// session consumes on one channel of s until ctx is done (nil error), the breaker
// opens (errPaused) or the delivery stream ends. subscribed reports whether
// basic.consume succeeded.
func (cons *consumer) session(ctx context.Context, s *session) (subscribed bool, err error) {
	ch, err := s.conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	if err := ch.Qos(cons.cfg.Prefetch, 0, false); err != nil {
		return false, fmt.Errorf("qos: %w", err)
	}
	tag := fmt.Sprintf("%s-%s", cmp.Or(cons.conn.cfg.AppID, "ates"), uuid.NewString())
	deliveries, err := ch.Consume(cons.spec.Name, tag, false, false, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	cons.log.Info("consumer subscribed", "prefetch", cons.cfg.Prefetch)

	hctx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range cons.cfg.Prefetch {
		wg.Go(func() {
			for raw := range deliveries {
				if ctx.Err() != nil {
					// Shutting down: hand it back untouched for another consumer.
					_ = raw.Reject(true)
					continue
				}
				cons.process(hctx, raw)
			}
		})
	}
	workers := make(chan struct{})
	go func() {
		wg.Wait()
		close(workers)
	}()

	_, opened, _ := cons.breaker.state()
	select {
	case <-ctx.Done():
		err = nil
	case <-opened:
		// Deliveries already buffered are handed back unhandled by process.
		err = errPaused
	case <-workers:
		return true, errors.New("delivery stream closed")
	}
	// The broker stops delivering; buffered deliveries drain through the workers and
	// the channel closes the stream.
	if cerr := ch.Cancel(tag, false); cerr != nil {
		cons.log.Debug("cancel consumer", "error", cerr)
	}
	<-workers
	return true, err
}

// process runs one delivery through the middleware and settles it.
func (cons *consumer) process(ctx context.Context, raw amqp.Delivery) {
	d := newDelivery(cons.spec.Name, raw)
	// The routing key comes from the message (for a copy through the dead-letter
	// exchange, from a header any consumer's user can set): keys without a route share
	// one label, so made-up keys cannot add metric series or span names without bound.
	key := d.RoutingKey
	if _, ok := cons.routes[key]; !ok {
		key = unroutedLabel
	}
	// Every log line of the event is logged with ctx, so it carries the span's ids.
	ctx, span := startProcessSpan(ctx, cons.spec.Name, key, d)
	var err error
	defer func() { endSpan(span, err) }()
	log := cons.log.With("event_id", d.EventID, "type", d.Type, "routing_key", d.RoutingKey, "attempt", d.Attempt)
	if d.Redelivered > 0 {
		// Handed out before without being settled: a consumer died or lost its channel.
		log = log.With("redelivered", d.Redelivered)
	}
	if cons.breaker.isOpen() {
		cons.retryLater(ctx, raw, d, d.Attempt-1, errPaused, log)
		return
	}
	start := time.Now()
	err = cons.handle(ctx, d, log)
	cons.metrics.duration.WithLabelValues(key).Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		cons.metrics.events.WithLabelValues(key, outcomeAcked).Inc()
		if err := raw.Ack(false); err != nil {
			log.WarnContext(ctx, "ack failed; the event will be delivered again (and found applied)", "error", err)
		}
	case IsPermanent(err):
		cons.metrics.events.WithLabelValues(key, outcomeDeadLettered).Inc()
		if errors.Is(err, ErrUnverified) {
			cons.metrics.unverified.WithLabelValues(key).Inc()
		}
		log.ErrorContext(ctx, "event can never be applied; dead-lettering", "error", err, "app_id", d.AppID)
		cons.deadLetter(ctx, raw, d, err, log)
	default:
		cons.metrics.events.WithLabelValues(key, outcomeRetried).Inc()
		log.WarnContext(ctx, "event failed; retrying later", "error", err)
		cons.retryLater(ctx, raw, d, d.Attempt, err, log)
	}
}

// handle routes, decodes and validates d, then applies it, retrying transient failures in
// process while the dependency answers.
func (cons *consumer) handle(ctx context.Context, d Delivery, log *slog.Logger) error {
	if cons.cfg.Verify != nil {
		if err := cons.cfg.Verify.verify(d); err != nil {
			return Permanent(err)
		}
	}
	route, ok := cons.routes[d.RoutingKey]
	if !ok {
		return Permanent(fmt.Errorf("no handler for routing key %q", d.RoutingKey))
	}
	id, err := uuid.Parse(d.EventID)
	if err != nil {
		return Permanent(fmt.Errorf("message_id %q is not an event id: %w", d.EventID, err))
	}
	apply, err := route.decode(d, id, cons.validator)
	if err != nil {
		return Permanent(err)
	}
	for try := 0; ; try++ {
		err := cons.attempt(ctx, apply, log)
		if err == nil || IsPermanent(err) || cons.breaker.trip(cons.life, err) || try == len(inProcessRetries) { //nolint:contextcheck // the breaker's probe outlives this delivery: it runs for the consumer's life
			return err
		}
		wait := jitter(inProcessRetries[try])
		log.DebugContext(ctx, "event failed; retrying in process", "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-cons.life.Done(): // shutting down: the retry queue takes it
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// attempt runs apply once under the per-event timeout, turning a panic into an error.
func (cons *consumer) attempt(ctx context.Context, apply func(context.Context) error, log *slog.Logger) (err error) {
	ctx, cancel := context.WithTimeout(ctx, cons.cfg.Timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "event handler panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return apply(ctx)
}

// retryLater copies raw to the retry queue, from where it expires back into the queue
// after a capped, jittered delay that grows with attempts, and acks it once the copy is
// confirmed. If the copy fails the delivery is returned to its queue instead.
func (cons *consumer) retryLater(ctx context.Context, raw amqp.Delivery, d Delivery, attempts int, cause error, log *slog.Logger) {
	delay := jitter(min(cons.cfg.RetryMin<<min(max(attempts-1, 0), 16), cons.cfg.RetryMax))
	err := cons.copyTo(ctx, RetryQueue(cons.spec.Name), raw, d, attempts, cause, delay)
	if err != nil {
		log.ErrorContext(ctx, "could not hand the event to the retry queue; returning it to its queue", "error", err)
		if err := raw.Nack(false, true); err != nil {
			log.WarnContext(ctx, "nack failed; the event will be delivered again", "error", err)
		}
		return
	}
	if err := raw.Ack(false); err != nil {
		// The copy is in the retry queue and the original comes back too: the event is
		// handled twice, which consumers dedupe on its id.
		log.WarnContext(ctx, "ack after the retry copy failed", "error", err)
	}
}

// deadLetter copies raw to the dead-letter queue with the reason and acks it once the
// copy is confirmed. If the copy fails (the broker is away, or the dead-letter queue is
// full) the event goes through the retry queue and is dead-lettered when it comes back.
func (cons *consumer) deadLetter(ctx context.Context, raw amqp.Delivery, d Delivery, reason error, log *slog.Logger) {
	if err := cons.copyTo(ctx, DeadLetterQueue(cons.spec.Name), raw, d, d.Attempt, reason, 0); err != nil {
		log.ErrorContext(ctx, "dead-lettering failed; the event will come back and be dead-lettered then", "error", err)
		cons.retryLater(ctx, raw, d, d.Attempt, reason, log)
		return
	}
	if err := raw.Ack(false); err != nil {
		// The copy is in the dead-letter queue; the original will come back and be
		// dead-lettered again. Duplicates there are harmless: replay applies once.
		log.WarnContext(ctx, "ack after dead-lettering failed", "error", err)
	}
}

// copyTo publishes a copy of raw to queue (through the dead-letter exchange, where each
// queue is bound under its own name) and waits for the confirm. A positive expire makes
// it a retry copy.
func (cons *consumer) copyTo(ctx context.Context, queue string, raw amqp.Delivery, d Delivery, attempts int, reason error, expire time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, copyTimeout)
	defer cancel()
	p := republishing(raw, copyHeaders(cons.spec.Name, raw, d, attempts, reason))
	if expire > 0 {
		p.Expiration = strconv.FormatInt(max(expire.Milliseconds(), 1), 10)
	}
	return cons.conn.publish(ctx, cons.conn.dlx, queue, p)
}

// republishing is raw as a message to publish again, with headers.
func republishing(raw amqp.Delivery, headers amqp.Table) amqp.Publishing {
	return amqp.Publishing{
		Headers:         headers,
		ContentType:     raw.ContentType,
		ContentEncoding: raw.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		CorrelationId:   raw.CorrelationId,
		MessageId:       raw.MessageId,
		Timestamp:       raw.Timestamp,
		Type:            raw.Type,
		AppId:           raw.AppId,
		Body:            raw.Body,
	}
}
