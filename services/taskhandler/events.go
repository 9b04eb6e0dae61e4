package taskhandler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
)

// handler turns deliveries into store calls. Bad messages are permanent errors (the
// broker dead-letters them with the reason); database trouble is retried here a few
// times with backoff, then handed back to the broker, which retries later.
type handler struct {
	store     *store
	validator protovalidate.Validator
	timeout   time.Duration
	log       *slog.Logger
	processed *prometheus.CounterVec
	// retries are the pauses before each in-process retry of a transient failure.
	retries []time.Duration
}

// inProcessRetries are the pauses before each retry of a transient database error; after
// the last one the event goes back to the queue, which retries it later.
var inProcessRetries = []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}

func (h *handler) handle(ctx context.Context, d broker.Delivery) error {
	msg, err := h.decode(d)
	if err != nil {
		h.processed.WithLabelValues(d.RoutingKey, "invalid").Inc()
		return broker.Permanent(err)
	}
	id, _ := uuid.Parse(d.EventID) // checked by decode
	log := h.log.With("event_id", id, "type", d.Type, "attempt", d.Attempt)
	if tp, ok := d.Headers[broker.HeaderTraceparent].(string); ok {
		log = log.With("traceparent", tp)
	}

	for attempt := 0; ; attempt++ {
		outcome, reason, moved, err := h.apply(ctx, id, msg)
		if err == nil {
			h.processed.WithLabelValues(d.RoutingKey, string(outcome)).Inc()
			switch outcome {
			case Rejected:
				log.Info("event rejected", "reason", reason)
			case Duplicate:
				log.Info("event already applied; skipped")
			default:
				log.Debug("event applied", "moved", moved)
			}
			return nil
		}
		if !transient(err) {
			// The event itself is at fault: retrying cannot help.
			h.processed.WithLabelValues(d.RoutingKey, "invalid").Inc()
			return broker.Permanent(fmt.Errorf("apply event %s: %w", id, err))
		}
		if attempt == len(h.retries) {
			h.processed.WithLabelValues(d.RoutingKey, "failed").Inc()
			return fmt.Errorf("apply event %s: %w", id, err)
		}
		log.Warn("applying event failed; retrying", "err", err, "in", h.retries[attempt])
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(h.retries[attempt]):
		}
	}
}

// apply runs one event in its own transaction bounded by the event timeout.
func (h *handler) apply(ctx context.Context, id uuid.UUID, msg proto.Message) (Outcome, string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	switch ev := msg.(type) {
	case *eventsv1.TaskCreate:
		o, r, err := h.store.create(ctx, id, ev)
		return o, r, 1, err
	case *eventsv1.TaskComplete:
		o, r, err := h.store.complete(ctx, id, ev)
		return o, r, 1, err
	case *eventsv1.TaskAssign:
		o, r, err := h.store.assign(ctx, id, ev)
		return o, r, 1, err
	case *eventsv1.TasksReassign:
		return h.store.reassign(ctx, id, ev)
	}
	return "", "", 0, fmt.Errorf("no handler for %T", msg)
}

// decode reads and validates the payload the routing key promises.
func (h *handler) decode(d broker.Delivery) (proto.Message, error) {
	if _, err := uuid.Parse(d.EventID); err != nil {
		return nil, fmt.Errorf("message_id %q is not an event id: %w", d.EventID, err)
	}
	var msg proto.Message
	switch d.RoutingKey {
	case events.TaskCreate:
		msg = &eventsv1.TaskCreate{}
	case events.TaskComplete:
		msg = &eventsv1.TaskComplete{}
	case events.TaskAssign:
		msg = &eventsv1.TaskAssign{}
	case events.TasksReassign:
		msg = &eventsv1.TasksReassign{}
	default:
		return nil, fmt.Errorf("unexpected routing key %q", d.RoutingKey)
	}
	if err := d.Unmarshal(msg); err != nil {
		return nil, fmt.Errorf("decode %s: %w", d.RoutingKey, err)
	}
	if err := h.validator.Validate(msg); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", d.RoutingKey, err)
	}
	return msg, nil
}

// transient reports whether err may pass on a retry: anything but a permanent error or a
// database error that says the data itself is wrong (SQLSTATE classes 22 and 23).
func transient(err error) bool {
	if broker.IsPermanent(err) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", "23":
			return false
		}
	}
	return true
}
