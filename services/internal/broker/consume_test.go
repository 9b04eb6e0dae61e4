package broker_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
)

// TestTransientFailureIsRetriedUntilItPasses: an error that is not permanent is retried
// in process, then through the retry queue with a growing delay, as often as it takes;
// the event keeps its id and routing key and nothing is dead-lettered.
func TestTransientFailureIsRetriedUntilItPasses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)
	var calls atomic.Int32
	rec := &recorder{fail: func(broker.Delivery) error {
		// 4 calls per delivery (1 + 3 in process): deliveries 1 and 2 fail, 3 passes.
		if calls.Add(1) <= 8 {
			return errors.New("deadlock detected")
		}
		return nil
	}}
	consume(t, c, e.queue, 1, rec.handle)

	id := publish(t, c, "task-1")

	got := rec.waitCount(t, 9)
	for i, d := range got {
		require.Equal(t, i/4+1, d.Attempt, "attempt of call %d", i)
		require.Equal(t, id, d.EventID)
		require.Equal(t, testKey, d.RoutingKey, "routing key of call %d", i)
	}
	rec.mu.Lock()
	gap := rec.times[4].Sub(rec.times[3])
	rec.mu.Unlock()
	require.GreaterOrEqual(t, gap, 25*time.Millisecond, "the retry queue delays the event")
	require.Never(t, func() bool { return len(rec.deliveries()) > 9 }, 300*time.Millisecond, pollEvery, "applied once, then acked")
	requireEmpty(t, c, e.queue)
	requireEmpty(t, c, broker.RetryQueue(e.queue))
	requireEmpty(t, c, broker.DeadLetterQueue(e.queue))
}

func TestPermanentErrorDeadLettersAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)
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
	require.Equal(t, "events.v1.TaskComplete", dead.Type)
	require.Equal(t, "task-1", taskID(t, dead))
	require.Never(t, func() bool { return len(rec.deliveries()) > 1 }, 300*time.Millisecond, pollEvery)
	requireEmpty(t, c, e.queue)
}

// sqlError is a database error as pgconn reports it.
type sqlError string

func (e sqlError) Error() string    { return "sqlstate " + string(e) }
func (e sqlError) SQLState() string { return string(e) }

func TestIsPermanentDecidesByCause(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"an error marked permanent", fmt.Errorf("apply: %w", broker.Permanent(errors.New("bad"))), true},
		{"a unique violation (the data is wrong)", fmt.Errorf("insert: %w", sqlError("23505")), true},
		{"a value out of range", sqlError("22003"), true},
		{"a serialization failure", sqlError("40001"), false},
		{"a deadlock", sqlError("40P01"), false},
		{"a lost connection", sqlError("08006"), false},
		{"a database shutting down", sqlError("57P01"), false},
		{"a missing table (schema behind: run the migrations)", sqlError("42P01"), false},
		{"a timeout", context.DeadlineExceeded, false},
		{"anything else", errors.New("connection refused"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, broker.IsPermanent(tt.err))
		})
	}
}

func TestHandlerPanicIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)
	var calls atomic.Int32
	rec := &recorder{fail: func(broker.Delivery) error {
		if calls.Add(1) == 1 {
			panic("nil map")
		}
		return nil
	}}
	consume(t, c, e.queue, 1, rec.handle)

	publish(t, c, "task-1")

	rec.waitCount(t, 2)
	require.Never(t, func() bool { return len(rec.deliveries()) > 2 }, 300*time.Millisecond, pollEvery)
	requireEmpty(t, c, broker.DeadLetterQueue(e.queue))
}

// TestBreakerPausesConsumingWhileTheDatabaseIsDown: while the probe fails, the consumer
// takes no deliveries (the ones it held wait in the queues), none is dead-lettered, and
// once the probe answers every event is applied.
func TestBreakerPausesConsumingWhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)
	var down atomic.Bool
	down.Store(true)
	errDown := errors.New("dial tcp 127.0.0.1:5432: connection refused")
	var failed atomic.Int32
	applied := &recorder{}
	reg := prometheus.NewRegistry()
	const prefetch = 4
	consumeWith(t, c, broker.ConsumerConfig{
		Queue:    e.queue,
		Prefetch: prefetch,
		Timeout:  5 * time.Second,
		Routes: []broker.Route{broker.RawRoute(testKey, func(ctx context.Context, d broker.Delivery) error {
			if down.Load() {
				failed.Add(1)
				return errDown
			}
			return applied.handle(ctx, d)
		})},
		Probe: func(context.Context) error {
			if down.Load() {
				return errDown
			}
			return nil
		},
		RetryMin: 50 * time.Millisecond,
		RetryMax: 200 * time.Millisecond,
		Metrics:  reg,
	})
	paused := func() float64 {
		return testutil.ToFloat64(mustGather(t, reg, "ates_consumer_paused"))
	}

	ids := map[string]bool{}
	for i := range 20 {
		ids[publish(t, c, fmt.Sprintf("task-%d", i))] = true
	}
	require.Eventually(t, func() bool { return paused() == 1 }, waitFor, pollEvery, "the breaker opens")
	seen := failed.Load()
	require.LessOrEqual(t, seen, int32(2*prefetch), "only the deliveries in hand were tried")
	require.Never(t, func() bool { return failed.Load() > seen }, time.Second, pollEvery, "no delivery is taken while paused")
	n, err := c.QueueDepth(t.Context(), broker.DeadLetterQueue(e.queue))
	require.NoError(t, err)
	require.Zero(t, n)

	down.Store(false)
	require.Eventually(t, func() bool {
		got := map[string]bool{}
		for _, d := range applied.deliveries() {
			got[d.EventID] = true
		}
		return len(got) == len(ids)
	}, waitFor, pollEvery, "every event is applied once the database answers")
	require.Len(t, applied.deliveries(), len(ids), "each exactly once")
	require.Zero(t, paused())
	requireEmpty(t, c, broker.DeadLetterQueue(e.queue))
}

// mustGather returns the one metric called name in reg, as a collector for testutil.
func mustGather(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		families, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range families {
			if f.GetName() == name {
				for _, m := range f.GetMetric() {
					ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "", nil, nil), prometheus.GaugeValue, m.GetGauge().GetValue())
				}
			}
		}
	})
}

// TestPoisonMessageIsDeadLetteredAtTheDeliveryLimit: a message handed out again and
// again without being settled (the consumer crashes on it) ends in the dead-letter queue
// with the reason and its routing key, instead of cycling for ever.
func TestPoisonMessageIsDeadLetteredAtTheDeliveryLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 2)
	id := publish(t, c, "task-1")

	ch, err := e.admin.Channel()
	require.NoError(t, err)
	for range 3 { // a consumer dying mid-event returns the message, like this nack
		var d amqp.Delivery
		require.Eventually(t, func() bool {
			var ok bool
			d, ok, err = ch.Get(e.queue, false)
			require.NoError(t, err)
			return ok
		}, waitFor, pollEvery)
		require.NoError(t, d.Nack(false, true))
	}

	dead := getEventually(t, c, broker.DeadLetterQueue(e.queue))
	require.Equal(t, id, dead.EventID)
	require.Equal(t, testKey, dead.RoutingKey)
	require.Contains(t, dead.DeadLetterReason(), "delivery_limit")
	requireEmpty(t, c, e.queue)
}

// TestTypedRouteDecodesAndValidates: On hands the handler a decoded, valid message; a
// message that does not decode, breaks the proto's rules, has another type, no UUID for
// an id or an unknown routing key is dead-lettered without reaching a handler.
func TestTypedRouteDecodesAndValidates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	const otherKey = "task.other"
	require.NoError(t, c.DeclareQueue(t.Context(), broker.QueueSpec{Name: e.queue, RoutingKeys: []string{testKey, otherKey}}))
	got := make(chan broker.Event[*eventsv1.TaskComplete], 10)
	consumeWith(t, c, broker.ConsumerConfig{
		Queue: e.queue, Prefetch: 1, Timeout: 5 * time.Second,
		Routes: []broker.Route{broker.On(testKey, func(_ context.Context, ev broker.Event[*eventsv1.TaskComplete]) error {
			got <- ev
			return nil
		})},
	})

	good := &eventsv1.TaskComplete{TaskId: uuid.NewString(), WorkerId: uuid.NewString()}
	goodID, err := c.Publish(t.Context(), testKey, good)
	require.NoError(t, err)
	select {
	case ev := <-got:
		require.Equal(t, goodID, ev.ID.String())
		require.Equal(t, good.GetTaskId(), ev.Msg.GetTaskId())
		require.Equal(t, testKey, ev.Delivery.RoutingKey)
	case <-time.After(waitFor):
		t.Fatal("the valid event did not reach its handler")
	}

	bad := map[string]string{}
	pub := func(key string, msg *eventsv1.TaskComplete, want string, opts ...broker.PublishOption) {
		id, err := c.Publish(t.Context(), key, msg, opts...)
		require.NoError(t, err)
		bad[id] = want
	}
	pub(testKey, &eventsv1.TaskComplete{TaskId: "task-1", WorkerId: uuid.NewString()}, "task_id")
	pub(testKey, good, "message_id", broker.WithEventID("event-42"))
	pub(otherKey, good, "no handler")
	wrongType, err := c.Publish(t.Context(), testKey, &eventsv1.TaskCreate{TaskId: uuid.NewString()})
	require.NoError(t, err)
	bad[wrongType] = `type "events.v1.TaskCreate"`

	for range bad {
		d := getEventually(t, c, broker.DeadLetterQueue(e.queue))
		require.Contains(t, d.DeadLetterReason(), bad[d.EventID], "dead letter %s", d.EventID)
		require.Equal(t, 1, d.Attempt, "dead-lettered without retries")
	}
	require.Empty(t, got, "no invalid event reached the handler")
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
	subscribed := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(context.Background(), broker.ConsumerConfig{
			Queue: e.queue, Prefetch: 1, Timeout: time.Second,
			Routes: []broker.Route{broker.RawRoute(testKey, func(context.Context, broker.Delivery) error {
				close(subscribed)
				return nil
			})},
		})
	}()
	publish(t, c, "task-1")
	<-subscribed
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
	ok := []broker.Route{broker.RawRoute(testKey, func(context.Context, broker.Delivery) error { return nil })}
	good := broker.ConsumerConfig{Queue: e.queue, Prefetch: 1, Timeout: time.Second, Routes: ok}
	for _, tt := range []struct {
		name string
		edit func(*broker.ConsumerConfig)
		want string
	}{
		{"the queue must be declared", func(c *broker.ConsumerConfig) { c.Queue = "undeclared" }, "not declared"},
		{"prefetch is at least 1", func(c *broker.ConsumerConfig) { c.Prefetch = 0 }, "prefetch"},
		{"the timeout is positive", func(c *broker.ConsumerConfig) { c.Timeout = 0 }, "timeout"},
		{"there is a route", func(c *broker.ConsumerConfig) { c.Routes = nil }, "no routes"},
		{"a key has one route", func(c *broker.ConsumerConfig) { c.Routes = append(ok, ok...) }, "twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			require.ErrorContains(t, c.Consume(t.Context(), cfg), tt.want)
		})
	}
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
		{"the delivery limit cannot be negative", broker.QueueSpec{Name: e.queue, RoutingKeys: keys, DeliveryLimit: -1}, "DeliveryLimit"},
		{"the dead-letter bound cannot be negative", broker.QueueSpec{Name: e.queue, RoutingKeys: keys, DeadLetterMax: -1}, "DeadLetterMax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorContains(t, c.DeclareQueue(t.Context(), tt.spec), tt.want)
		})
	}
}

// TestDeclareOverAnOldClassicQueueSaysWhatToDo: queues declared by an older aTES are
// classic; the quorum declaration cannot replace them and the error says how to move on.
func TestDeclareOverAnOldClassicQueueSaysWhatToDo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	ch, err := e.admin.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare(e.queue, true, false, false, false, nil)
	require.NoError(t, err)
	err = c.DeclareQueue(t.Context(), broker.QueueSpec{Name: e.queue, RoutingKeys: []string{testKey}})
	require.ErrorContains(t, err, "delete")
	require.ErrorContains(t, err, e.queue)
}
