package broker_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
)

func TestPublishConsumeRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)

	// A second queue on the same key shows the raw AMQP properties.
	admin, err := e.admin.Channel()
	require.NoError(t, err)
	probe, err := admin.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, admin.QueueBind(probe.Name, testKey, e.exchange, false, nil))

	rec := &recorder{}
	consume(t, c, e.queue, 1, rec.handle)

	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sent := &eventsv1.TaskComplete{TaskId: "task-1", WorkerId: "worker-1"}
	before := time.Now().Truncate(time.Second)
	id, err := c.Publish(t.Context(), testKey, sent, broker.WithHeaders(amqp.Table{broker.HeaderTraceparent: traceparent}))
	require.NoError(t, err)
	u, err := uuid.Parse(id)
	require.NoError(t, err)
	require.Equal(t, uuid.Version(7), u.Version())

	d := rec.waitCount(t, 1)[0]
	require.Equal(t, id, d.EventID)
	require.Equal(t, "events.v1.TaskComplete", d.Type)
	require.Equal(t, testKey, d.RoutingKey)
	require.Equal(t, broker.ContentTypeProtobuf, d.ContentType)
	require.Equal(t, "broker-test", d.AppID)
	require.Equal(t, 1, d.Attempt)
	require.WithinRange(t, d.Timestamp, before, time.Now())
	require.Equal(t, "v1", d.Headers[broker.HeaderSchemaVersion])
	require.Equal(t, traceparent, d.Headers[broker.HeaderTraceparent])
	var got eventsv1.TaskComplete
	require.NoError(t, d.Unmarshal(&got))
	require.True(t, proto.Equal(sent, &got), "got %v", &got)
	require.Error(t, d.Unmarshal(&eventsv1.TaskCreate{}), "a body of another type must not decode")

	raw, ok, err := admin.Get(probe.Name, true)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, id, raw.MessageId)
	require.Equal(t, "events.v1.TaskComplete", raw.Type)
	require.Equal(t, broker.ContentTypeProtobuf, raw.ContentType)
	require.Equal(t, "broker-test", raw.AppId)
	require.Equal(t, amqp.Persistent, raw.DeliveryMode)
	require.WithinRange(t, raw.Timestamp, before, time.Now())
	require.Equal(t, "v1", raw.Headers[broker.HeaderSchemaVersion])
	require.Equal(t, traceparent, raw.Headers[broker.HeaderTraceparent])
	require.Equal(t, e.exchange, raw.Exchange)
	require.Equal(t, testKey, raw.RoutingKey)
}

func TestPublishWithEventIDKeepsTheID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)

	id := publish(t, c, "task-1", broker.WithEventID("event-42"))
	require.Equal(t, "event-42", id)
	d := getEventually(t, c, e.queue)
	require.Equal(t, "event-42", d.EventID)
}

func TestPublishUnroutableFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)

	id, err := c.Publish(t.Context(), "nobody.listens", &eventsv1.TaskComplete{TaskId: "task-1"})
	require.ErrorIs(t, err, broker.ErrUnroutable)
	require.NotEmpty(t, id)

	// The publisher channel stays usable.
	publish(t, c, "task-2")
	require.Equal(t, "task-2", taskID(t, getEventually(t, c, e.queue)))
}

func TestPublishConcurrentlyConfirmsEachMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)

	const routable, unroutable = 200, 20
	var wg sync.WaitGroup
	errs := make([]error, routable+unroutable)
	for i := range routable + unroutable {
		wg.Go(func() {
			key := testKey
			if i >= routable {
				key = "nobody.listens"
			}
			_, errs[i] = c.Publish(t.Context(), key, &eventsv1.TaskComplete{TaskId: fmt.Sprint(i)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i < routable {
			require.NoError(t, err, "publish %d", i)
		} else {
			require.ErrorIs(t, err, broker.ErrUnroutable, "publish %d", i)
		}
	}
	ch, err := e.admin.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclarePassive(e.queue, true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, routable, q.Messages)
}

func TestPublishWhileDisconnectedFailsFast(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy := brokertest.NewProxy(t)
	c := e.dial(t, func(cfg *broker.Config) { cfg.URL = proxy.URL() })
	e.declare(t, c, 0)
	require.True(t, c.Ready())

	proxy.Refuse() // the broker is down: reconnecting fails until the test ends
	require.Eventually(t, func() bool { return !c.Ready() }, waitFor, pollEvery)

	start := time.Now()
	_, err := c.Publish(t.Context(), testKey, &eventsv1.TaskComplete{TaskId: "task-1"})
	require.ErrorIs(t, err, broker.ErrNotSent)
	require.ErrorIs(t, err, broker.ErrUnavailable)
	require.NotErrorIs(t, err, broker.ErrOutcomeUnknown)
	require.Less(t, time.Since(start), 100*time.Millisecond)
	require.ErrorIs(t, c.Check(t.Context()), broker.ErrUnavailable, "not ready while disconnected")

	_, err = c.Get(t.Context(), e.queue)
	require.ErrorIs(t, err, broker.ErrUnavailable)
	require.ErrorIs(t, c.DeclareQueue(t.Context(), broker.QueueSpec{Name: e.queue, RoutingKeys: []string{testKey}}), broker.ErrUnavailable)
}

func TestPublishAfterCloseFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	require.NoError(t, c.Close())
	require.False(t, c.Ready())

	_, err := c.Publish(t.Context(), testKey, &eventsv1.TaskComplete{TaskId: "task-1"})
	require.ErrorIs(t, err, broker.ErrClosed)
	require.ErrorIs(t, err, broker.ErrNotSent)
	require.ErrorIs(t, err, broker.ErrUnavailable)
	require.ErrorIs(t, c.Check(t.Context()), broker.ErrClosed)
}

func TestDialFailsWhenBrokerUnreachable(t *testing.T) {
	t.Parallel()
	_, err := broker.Dial(t.Context(), broker.Config{URL: "amqp://guest:guest@127.0.0.1:1/"})
	require.Error(t, err)
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	cause := errors.New("bad payload")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a marked error is permanent", broker.Permanent(cause), true},
		{"a wrapped marked error is permanent", fmt.Errorf("handle: %w", broker.Permanent(cause)), true},
		{"an unmarked error is not", cause, false},
		{"nil is not", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, broker.IsPermanent(tt.err))
		})
	}
	require.ErrorIs(t, broker.Permanent(cause), cause)
	require.Equal(t, cause.Error(), broker.Permanent(cause).Error())
	require.NoError(t, broker.Permanent(nil))
}

// taskID decodes d as a TaskComplete and returns its task id.
func taskID(t *testing.T, d *broker.Delivery) string {
	t.Helper()
	var m eventsv1.TaskComplete
	require.NoError(t, d.Unmarshal(&m))
	return m.GetTaskId()
}
