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
	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/pgutil"
)

// publish sends one event and returns once the broker confirmed it. Any failure is an
// Unavailable status: nothing was accepted, so nothing will change.
func publish(ctx context.Context, b *broker.Conn, log *slog.Logger, key string, msg proto.Message) (uuid.UUID, error) {
	var opts []broker.PublishOption
	// The caller's W3C trace context travels with the event, so a trace spans the call
	// and taskhandler's work.
	if tp := metadata.ValueFromIncomingContext(ctx, broker.HeaderTraceparent); len(tp) == 1 {
		opts = append(opts, broker.WithHeaders(amqp.Table{broker.HeaderTraceparent: tp[0]}))
	}
	id, err := b.Publish(ctx, key, msg, opts...)
	switch {
	case err == nil:
		eventID, err := uuid.Parse(id)
		if err != nil {
			return uuid.Nil, fmt.Errorf("the broker layer gave event id %q: %w", id, err)
		}
		return eventID, nil
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return uuid.Nil, status.Error(codes.DeadlineExceeded, "the event broker did not confirm in time; the change may or may not happen")
	}
	log.WarnContext(ctx, "publish failed", "routing_key", key, "err", err)
	return uuid.Nil, status.Error(codes.Unavailable, "the event broker is unavailable; nothing was changed, try again")
}

// processedChannel is the NOTIFY channel taskhandler signals applied events on.
const processedChannel = "ates_processed"

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
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+processedChannel); err != nil {
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
