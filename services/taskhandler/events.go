package taskhandler

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
)

// handler turns task events into store calls. Decoding, validation, the per-event
// timeout, retries and dead-lettering are the broker's consumer middleware; what is left
// here is the business: apply, and record the outcome.
type handler struct {
	store     *store
	log       *slog.Logger
	processed *prometheus.CounterVec
	tasks     *prometheus.CounterVec // applied changes by action
}

// routes are taskhandler's event handlers, one per task event.
func (h *handler) routes() []broker.Route {
	return []broker.Route{
		broker.On(events.TaskCreate, h.create),
		broker.On(events.TaskComplete, h.complete),
		broker.On(events.TaskAssign, h.assign),
		broker.On(events.TasksReassign, h.reassign),
	}
}

func (h *handler) create(ctx context.Context, ev broker.Event[*eventsv1.TaskCreate]) error {
	o, reason, err := h.store.create(ctx, ev.ID, ev.Msg)
	return h.done(ctx, ev.Delivery, "created", o, reason, 1, err)
}

func (h *handler) complete(ctx context.Context, ev broker.Event[*eventsv1.TaskComplete]) error {
	o, reason, err := h.store.complete(ctx, ev.ID, ev.Msg)
	return h.done(ctx, ev.Delivery, "completed", o, reason, 1, err)
}

func (h *handler) assign(ctx context.Context, ev broker.Event[*eventsv1.TaskAssign]) error {
	o, reason, err := h.store.assign(ctx, ev.ID, ev.Msg)
	return h.done(ctx, ev.Delivery, "assigned", o, reason, 1, err)
}

func (h *handler) reassign(ctx context.Context, ev broker.Event[*eventsv1.TasksReassign]) error {
	o, reason, moved, err := h.store.reassign(ctx, ev.ID, ev.Msg)
	return h.done(ctx, ev.Delivery, "assigned", o, reason, moved, err)
}

// done records what applying an event did (moved tasks changed by action, when it was
// applied); errors go back to the middleware, which classifies them.
func (h *handler) done(ctx context.Context, d broker.Delivery, action string, o Outcome, reason string, moved int, err error) error {
	if err != nil {
		return err
	}
	h.processed.WithLabelValues(d.RoutingKey, string(o)).Inc()
	if o == Applied {
		h.tasks.WithLabelValues(action).Add(float64(moved))
	}
	log := h.log.With("event_id", d.EventID, "type", d.Type, "attempt", d.Attempt)
	switch o {
	case Rejected:
		log.InfoContext(ctx, "event rejected", "reason", reason)
	case Duplicate:
		log.InfoContext(ctx, "event already applied; skipped")
	default:
		log.DebugContext(ctx, "event applied", "moved", moved)
	}
	return nil
}
