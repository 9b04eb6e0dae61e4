package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
)

const (
	testKey   = "task.completed"
	waitFor   = 10 * time.Second
	pollEvery = 20 * time.Millisecond
)

// env is one test's private exchange and queue, deleted when the test ends.
type env struct {
	exchange string
	queue    string
	admin    *amqp.Connection
}

func newEnv(t *testing.T) *env {
	t.Helper()
	admin, err := amqp.Dial(broker.TestURL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	exchange, queues := brokertest.Names(t, "q")
	return &env{exchange: exchange, queue: queues[0], admin: admin}
}

// dial connects with fast reconnects; edit changes the config first.
func (e *env) dial(t *testing.T, edit func(*broker.Config)) *broker.Conn {
	t.Helper()
	cfg := broker.Config{
		URL:          broker.TestURL(),
		AppID:        "broker-test",
		Exchange:     e.exchange,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := broker.Dial(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// declare declares the env's queue; deliveryLimit 0 takes the default.
func (e *env) declare(t *testing.T, c *broker.Conn, deliveryLimit int) {
	t.Helper()
	require.NoError(t, c.DeclareQueue(t.Context(), broker.QueueSpec{
		Name:          e.queue,
		RoutingKeys:   []string{testKey},
		DeliveryLimit: deliveryLimit,
	}))
}

// handlerFunc handles a raw delivery (see broker.RawRoute).
type handlerFunc func(ctx context.Context, d broker.Delivery) error

// consume runs a consumer of testKey with h and quick retries in the background.
func consume(t *testing.T, c *broker.Conn, queue string, prefetch int, h handlerFunc) (stop func() error) {
	t.Helper()
	return consumeWith(t, c, broker.ConsumerConfig{
		Queue:    queue,
		Prefetch: prefetch,
		Timeout:  5 * time.Second,
		Routes:   []broker.Route{broker.RawRoute(testKey, h)},
		RetryMin: 50 * time.Millisecond,
		RetryMax: 200 * time.Millisecond,
	})
}

// consumeWith runs Consume in the background; the returned stop cancels it and
// returns Consume's result. It also runs at cleanup.
func consumeWith(t *testing.T, c *broker.Conn, cfg broker.ConsumerConfig) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Consume(ctx, cfg) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(waitFor):
				err = fmt.Errorf("Consume did not return within %s", waitFor)
			}
		})
		return err
	}
	t.Cleanup(func() { require.NoError(t, stop()) })
	return stop
}

// publish publishes a TaskComplete for task and returns its event id.
func publish(t *testing.T, c *broker.Conn, task string, opts ...broker.PublishOption) string {
	t.Helper()
	id, err := c.Publish(t.Context(), testKey, &eventsv1.TaskComplete{TaskId: task, WorkerId: "worker-1"}, opts...)
	require.NoError(t, err)
	return id
}

// getEventually polls queue until it yields a message.
func getEventually(t *testing.T, c *broker.Conn, queue string) *broker.Delivery {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		d, err := c.Get(t.Context(), queue)
		require.NoError(t, err)
		if d != nil {
			return d
		}
		require.True(t, time.Now().Before(deadline), "no message in %s after %s", queue, waitFor)
		time.Sleep(pollEvery)
	}
}

// requireEmpty checks that queue holds no message.
func requireEmpty(t *testing.T, c *broker.Conn, queue string) {
	t.Helper()
	d, err := c.Get(t.Context(), queue)
	require.NoError(t, err)
	require.Nil(t, d, "unexpected message in %s", queue)
}

// recorder is a handler that records deliveries and answers with fail.
type recorder struct {
	mu    sync.Mutex
	got   []broker.Delivery
	times []time.Time
	fail  func(d broker.Delivery) error
}

func (r *recorder) handle(_ context.Context, d broker.Delivery) error {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
	if r.fail == nil {
		return nil
	}
	return r.fail(d)
}

func (r *recorder) deliveries() []broker.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]broker.Delivery(nil), r.got...)
}

func (r *recorder) waitCount(t *testing.T, n int) []broker.Delivery {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.deliveries()) >= n }, waitFor, pollEvery,
		"handler called fewer than %d times", n)
	return r.deliveries()
}
