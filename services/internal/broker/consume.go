package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// deadLetterTimeout bounds publishing a message to its dead-letter queue.
const deadLetterTimeout = 30 * time.Second

// Handler processes one delivery. Returning nil acknowledges it; an error
// marked with Permanent dead-letters it at once; any other error retries it
// after the queue's RetryDelay, up to MaxDeliveries attempts. A panic counts
// as an ordinary error.
type Handler func(ctx context.Context, d Delivery) error

// Consume handles the messages of queue, which must have been declared with
// DeclareQueue on c, until ctx is cancelled. Up to prefetch messages are
// handled concurrently (prefetch 1 handles them one by one, in queue order).
// It re-subscribes after reconnects. When ctx is cancelled it stops taking
// messages, waits for running handlers to finish and returns nil; it returns
// ErrClosed if c is closed first.
//
// Handlers get a context with ctx's values but not its cancellation, so a
// shutdown does not abort an event half-way; they must bound their own work.
func (c *Conn) Consume(ctx context.Context, queue string, prefetch int, handler Handler) error {
	spec, ok := c.queueSpec(queue)
	switch {
	case !ok:
		return fmt.Errorf("consume %s: queue not declared through this connection", queue)
	case prefetch < 1:
		return fmt.Errorf("consume %s: prefetch %d < 1", queue, prefetch)
	case handler == nil:
		return fmt.Errorf("consume %s: nil handler", queue)
	}
	log := c.log.With("queue", queue)
	for failures := 0; ; {
		s, err := c.waitSession(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("consume %s: %w", queue, err)
		}
		subscribed, err := c.consumeSession(ctx, s, spec, prefetch, handler, log)
		if ctx.Err() != nil {
			return nil
		}
		if c.ctx.Err() != nil {
			return fmt.Errorf("consume %s: %w", queue, ErrClosed)
		}
		if subscribed {
			failures = 0
		}
		log.Warn("consumer interrupted; subscribing again", "error", err)
		// Not a hot loop if the queue is gone or the channel keeps failing;
		// if the connection is gone, waitSession blocks anyway.
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

// consumeSession consumes on one channel of s until ctx is done (nil error)
// or the delivery stream ends. subscribed reports whether basic.consume
// succeeded.
func (c *Conn) consumeSession(ctx context.Context, s *session, spec QueueSpec, prefetch int, h Handler, log *slog.Logger) (subscribed bool, err error) {
	ch, err := s.conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return false, fmt.Errorf("qos: %w", err)
	}
	tag := fmt.Sprintf("%s-%s", cmp.Or(c.cfg.AppID, "ates"), uuid.NewString())
	deliveries, err := ch.Consume(spec.Name, tag, false, false, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	log.Info("consumer subscribed", "prefetch", prefetch)

	hctx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range prefetch {
		wg.Go(func() {
			for raw := range deliveries {
				if ctx.Err() != nil {
					// Shutting down: hand it back untouched for another consumer.
					_ = raw.Reject(true)
					continue
				}
				c.handle(hctx, spec, raw, h, log)
			}
		})
	}
	workers := make(chan struct{})
	go func() {
		wg.Wait()
		close(workers)
	}()

	select {
	case <-ctx.Done():
		// The broker stops delivering; buffered deliveries drain through the
		// workers (rejected) and the channel closes the stream.
		if err := ch.Cancel(tag, false); err != nil {
			log.Debug("cancel consumer", "error", err)
		}
		<-workers
		return true, nil
	case <-workers:
		return true, errors.New("delivery stream closed")
	}
}

// handle runs h on raw and settles raw according to the outcome.
func (c *Conn) handle(ctx context.Context, spec QueueSpec, raw amqp.Delivery, h Handler, log *slog.Logger) {
	d := newDelivery(spec.Name, raw)
	log = log.With("event_id", d.EventID, "type", d.Type, "routing_key", d.RoutingKey, "attempt", d.Attempt)
	err := callHandler(ctx, h, d, log)
	switch {
	case err == nil:
		if err := raw.Ack(false); err != nil {
			log.Warn("ack failed; the event will be delivered again", "error", err)
		}
	case IsPermanent(err):
		log.Warn("event failed permanently; dead-lettering", "error", err)
		c.deadLetter(ctx, spec, raw, d, err, log)
	case d.Attempt >= spec.MaxDeliveries:
		log.Error("event failed on its last attempt; dead-lettering", "max_deliveries", spec.MaxDeliveries, "error", err)
		c.deadLetter(ctx, spec, raw, d, err, log)
	default:
		log.Warn("event failed; retrying later", "retry_in", spec.RetryDelay, "error", err)
		// Dead-lettered by the broker into the retry queue.
		if err := raw.Nack(false, false); err != nil {
			log.Warn("nack failed; the event will be delivered again", "error", err)
		}
	}
}

// callHandler runs h, turning a panic into an error.
func callHandler(ctx context.Context, h Handler, d Delivery, log *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("event handler panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return h(ctx, d)
}

// deadLetter copies raw to spec's dead-letter queue with the reason and acks
// it once the copy is confirmed. If the copy fails, raw goes through the retry
// queue instead: it is handled once more and dead-lettered if that fails too.
func (c *Conn) deadLetter(ctx context.Context, spec QueueSpec, raw amqp.Delivery, d Delivery, reason error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, deadLetterTimeout)
	defer cancel()
	err := c.publish(ctx, c.dlx, spec.Name+deadSuffix, amqp.Publishing{
		Headers:         deadLetterHeaders(spec.Name, raw, d, reason),
		ContentType:     raw.ContentType,
		ContentEncoding: raw.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		CorrelationId:   raw.CorrelationId,
		MessageId:       raw.MessageId,
		Timestamp:       raw.Timestamp,
		Type:            raw.Type,
		AppId:           raw.AppId,
		Body:            raw.Body,
	})
	if err != nil {
		log.Error("dead-lettering failed; retrying the event later", "error", err)
		if err := raw.Nack(false, false); err != nil {
			log.Warn("nack failed; the event will be delivered again", "error", err)
		}
		return
	}
	if err := raw.Ack(false); err != nil {
		// The copy is in the dead-letter queue; the original will come back
		// and be dead-lettered again. Duplicates there are harmless.
		log.Warn("ack after dead-lettering failed", "error", err)
	}
}
