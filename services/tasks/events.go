package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/pgutil"
)

// What a caller is told when the event of its call could not be confirmed. The two cases
// need opposite advice: retrying a call that changed nothing is safe, retrying one that
// may have changed something is safe only under the same request_id.
const (
	msgNotSent         = "the event broker is unavailable and the change was not sent; nothing was changed, try again"
	msgNotSentDeadline = "the deadline passed before the change was sent; nothing was changed, try again"
	msgUnknown         = "the event broker did not confirm the change in time; the outcome is unknown"
	msgUnknownDeadline = "the deadline passed before the event broker confirmed the change; the outcome is unknown"
	adviceRetry        = ": retry with the same request_id, which applies the change at most once"
	adviceNoID         = ": the change may or may not happen, and this call had no request_id, so check before retrying (send a request_id to make retries safe)"
)

// publish sends one event under eventID and returns once the broker confirmed it. A
// failure is a status that says whether the change may still happen: Unavailable (or
// DeadlineExceeded, when the caller's deadline ended it) with msgNotSent when the event
// never reached the broker, with msgUnknown when it may have.
func publish(ctx context.Context, b *broker.Conn, log *slog.Logger, k retryKey, key string, msg proto.Message, eventID uuid.UUID) error {
	// ctx holds the call's span, whose trace context Publish writes into the event, so a
	// trace spans the call and taskhandler's work.
	_, err := b.Publish(ctx, key, msg, broker.WithEventID(eventID.String()))
	if err == nil {
		return nil
	}
	log.WarnContext(ctx, "publish failed", "routing_key", key, "event_id", eventID, "err", err)
	deadline := errors.Is(err, context.DeadlineExceeded)
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "call canceled")
	case errors.Is(err, broker.ErrOutcomeUnknown):
		code, text, advice := codes.Unavailable, msgUnknown, adviceRetry
		if deadline {
			code, text = codes.DeadlineExceeded, msgUnknownDeadline
		}
		if !k.given {
			advice = adviceNoID
		}
		return status.Error(code, text+advice)
	case deadline:
		return status.Error(codes.DeadlineExceeded, msgNotSentDeadline)
	case errors.Is(err, broker.ErrNotSent), errors.Is(err, broker.ErrUnroutable):
		return status.Error(codes.Unavailable, msgNotSent)
	}
	return err // a fault of ours (the event did not marshal, say): Internal
}

// waiter lets write calls wait for taskhandler's verdict on their event. One LISTEN
// connection wakes waiters by event id; waiters also poll, so a notification lost while
// the connection reconnects only delays them.
type waiter struct {
	pool    *pgxpool.Pool
	store   *store
	log     *slog.Logger
	poll    time.Duration
	mu      sync.Mutex
	waiting map[uuid.UUID]chan struct{}
}

func newWaiter(pool *pgxpool.Pool, st *store, log *slog.Logger) *waiter {
	return &waiter{pool: pool, store: st, log: log, poll: time.Second, waiting: map[uuid.UUID]chan struct{}{}}
}

// listen keeps a LISTEN connection open until ctx ends.
func (w *waiter) listen(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.listenOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		w.log.Warn("event listener lost its connection; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func (w *waiter) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, w.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx)) // close politely even once ctx has ended
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{events.ProcessedChannel}.Sanitize()); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if id, err := uuid.Parse(n.Payload); err == nil {
			w.wake(id)
		}
	}
}

func (w *waiter) wake(id uuid.UUID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.waiting[id]; ok {
		close(ch)
		delete(w.waiting, id)
	}
}

// verdict is taskhandler's outcome for one event.
type verdict struct {
	rejected bool
	reason   string
}

// wait returns the verdict on eventID once taskhandler has applied it, or DeadlineExceeded.
func (w *waiter) wait(ctx context.Context, eventID uuid.UUID) (verdict, error) {
	for {
		w.mu.Lock()
		ch, ok := w.waiting[eventID]
		if !ok {
			ch = make(chan struct{})
			w.waiting[eventID] = ch
		}
		w.mu.Unlock()

		row, err := w.store.outcome(ctx, eventID)
		switch {
		case err == nil:
			w.forget(eventID, ch)
			return verdict{rejected: row.Outcome == "rejected", reason: row.Reason}, nil
		case ctx.Err() != nil:
			w.forget(eventID, ch)
			return verdict{}, status.Error(codes.DeadlineExceeded, "the change was accepted but not applied before the deadline; it will still be applied")
		case !errors.Is(err, pgutil.ErrNotFound):
			w.forget(eventID, ch)
			return verdict{}, fmt.Errorf("read event outcome: %w", err)
		}
		select {
		case <-ch:
		case <-time.After(w.poll):
		case <-ctx.Done():
		}
	}
}

func (w *waiter) forget(id uuid.UUID, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting[id] == ch {
		delete(w.waiting, id)
	}
}
