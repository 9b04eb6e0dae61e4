package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/broker"
)

func TestFailingEventIsRetriedWithDelayThenDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 3)
	rec := &recorder{fail: func(broker.Delivery) error { return errors.New("database unreachable") }}
	consume(t, c, e.queue, 1, rec.handle)

	id := publish(t, c, "task-1")

	dead := getEventually(t, c, broker.DeadLetterQueue(e.queue))
	require.Equal(t, id, dead.EventID)
	require.Equal(t, "database unreachable", dead.DeadLetterReason())
	require.Equal(t, 3, dead.Attempt)
	require.Equal(t, testKey, dead.RoutingKey)
	require.Equal(t, "events.v1.TaskComplete", dead.Type)
	require.Equal(t, "task-1", taskID(t, dead))

	got := rec.deliveries()
	require.Len(t, got, 3)
	for i, d := range got {
		require.Equal(t, i+1, d.Attempt, "attempt of delivery %d", i)
		require.Equal(t, id, d.EventID)
		require.Equal(t, testKey, d.RoutingKey, "routing key of delivery %d", i)
	}
	rec.mu.Lock()
	for i := 1; i < len(rec.times); i++ {
		require.GreaterOrEqual(t, rec.times[i].Sub(rec.times[i-1]), 90*time.Millisecond, "retry %d came too early", i)
	}
	rec.mu.Unlock()

	time.Sleep(300 * time.Millisecond) // three retry delays: nothing comes back
	require.Len(t, rec.deliveries(), 3)
	requireEmpty(t, c, e.queue)
	requireEmpty(t, c, broker.DeadLetterQueue(e.queue))
}

func TestEventThatFailsOnceSucceedsOnRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 3)
	rec := &recorder{fail: func(d broker.Delivery) error {
		if d.Attempt == 1 {
			return errors.New("deadlock detected")
		}
		return nil
	}}
	consume(t, c, e.queue, 1, rec.handle)

	publish(t, c, "task-1")

	got := rec.waitCount(t, 2)
	require.Equal(t, 2, got[1].Attempt)
	time.Sleep(300 * time.Millisecond)
	require.Len(t, rec.deliveries(), 2)
	requireEmpty(t, c, e.queue)
	requireEmpty(t, c, broker.DeadLetterQueue(e.queue))
}

func TestPermanentErrorDeadLettersAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 5)
	rec := &recorder{fail: func(broker.Delivery) error {
		return fmt.Errorf("decode: %w", broker.Permanent(errors.New("bad payload")))
	}}
	consume(t, c, e.queue, 1, rec.handle)

	id := publish(t, c, "task-1")

	dead := getEventually(t, c, broker.DeadLetterQueue(e.queue))
	require.Equal(t, id, dead.EventID)
	require.Equal(t, "decode: bad payload", dead.DeadLetterReason())
	require.Equal(t, 1, dead.Attempt)
	require.Equal(t, testKey, dead.RoutingKey)
	time.Sleep(300 * time.Millisecond)
	require.Len(t, rec.deliveries(), 1)
	requireEmpty(t, c, e.queue)
}

func TestHandlerPanicIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 3)
	rec := &recorder{fail: func(d broker.Delivery) error {
		if d.Attempt == 1 {
			panic("nil map")
		}
		return nil
	}}
	consume(t, c, e.queue, 1, rec.handle)

	publish(t, c, "task-1")

	got := rec.waitCount(t, 2)
	require.Equal(t, 2, got[1].Attempt)
	time.Sleep(300 * time.Millisecond)
	require.Len(t, rec.deliveries(), 2)
	requireEmpty(t, c, broker.DeadLetterQueue(e.queue))
}

func TestConsumeFinishesInFlightEventOnCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)

	started := make(chan struct{}, 2)
	release := make(chan struct{})
	handlerCtxErr := make(chan error, 2)
	stop := consume(t, c, e.queue, 1, func(ctx context.Context, d broker.Delivery) error {
		started <- struct{}{}
		<-release
		handlerCtxErr <- ctx.Err()
		return nil
	})
	publish(t, c, "task-1")
	publish(t, c, "task-2")
	<-started

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Consume returned (%v) while a handler was running", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Consume did not return after the handler finished")
	}

	require.NoError(t, <-handlerCtxErr, "the handler's context must outlive the cancel")
	require.Len(t, started, 0, "a second event was taken after cancel")
	// The first event was acked; the second is still queued.
	d := getEventually(t, c, e.queue)
	require.Equal(t, "task-2", taskID(t, d))
	requireEmpty(t, c, e.queue)
}

func TestConsumeReturnsErrClosedWhenConnClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(context.Background(), e.queue, 1, func(context.Context, broker.Delivery) error { return nil })
	}()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, c.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, broker.ErrClosed)
	case <-time.After(waitFor):
		t.Fatal("Consume did not return after Close")
	}
}

func TestConsumeRejectsBadArguments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)
	ok := func(context.Context, broker.Delivery) error { return nil }

	require.ErrorContains(t, c.Consume(t.Context(), "undeclared", 1, ok), "not declared")
	require.ErrorContains(t, c.Consume(t.Context(), e.queue, 0, ok), "prefetch")
	require.ErrorContains(t, c.Consume(t.Context(), e.queue, 1, nil), "nil handler")
}

func TestDeclareQueueRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	keys := []string{testKey}
	tests := []struct {
		name string
		spec broker.QueueSpec
		want string
	}{
		{"a queue needs a name", broker.QueueSpec{RoutingKeys: keys}, "empty"},
		{"a .retry suffix is reserved", broker.QueueSpec{Name: e.queue + ".retry", RoutingKeys: keys}, "reserved"},
		{"a .dead suffix is reserved", broker.QueueSpec{Name: e.queue + ".dead", RoutingKeys: keys}, "reserved"},
		{"a queue needs a routing key", broker.QueueSpec{Name: e.queue}, "no routing keys"},
		{"max deliveries cannot be negative", broker.QueueSpec{Name: e.queue, RoutingKeys: keys, MaxDeliveries: -1}, "MaxDeliveries"},
		{"the retry delay cannot be negative", broker.QueueSpec{Name: e.queue, RoutingKeys: keys, RetryDelay: -time.Second}, "RetryDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorContains(t, c.DeclareQueue(t.Context(), tt.spec), tt.want)
		})
	}
}
