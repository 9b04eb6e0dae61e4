package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
)

// TestTraceContextCrossesTheBroker: the handler of an event runs in the trace of the
// call that published it, through the traceparent header, even with no spans exported.
// The signature does not cover that header: an event whose traceparent was changed on
// the way is still verified and applied, only filed under the other trace.
func TestTraceContextCrossesTheBroker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const key = "k1:the-secret-of-the-producer"
	c := e.dial(t, func(cfg *broker.Config) { cfg.Signer = keyring(t, key) })
	e.declare(t, c, 0)
	var mu sync.Mutex
	traces := map[string]trace.SpanContext{} // by event id: the span context the handler ran in
	consumeWith(t, c, broker.ConsumerConfig{
		Queue: e.queue, Prefetch: 1, Timeout: 5 * time.Second,
		Routes: []broker.Route{broker.RawRoute(testKey, func(ctx context.Context, d broker.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			traces[d.EventID] = trace.SpanContextFromContext(ctx)
			return nil
		})},
		Verify: keyring(t, key),
	})
	handled := func(id string) trace.SpanContext {
		t.Helper()
		var sc trace.SpanContext
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			var ok bool
			sc, ok = traces[id]
			return ok
		}, waitFor, pollEvery, "event %s handled", id)
		return sc
	}

	caller := spanContext(t, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
	id, err := c.Publish(trace.ContextWithSpanContext(t.Context(), caller), testKey, &eventsv1.TaskComplete{TaskId: "traced", WorkerId: "worker-1"})
	require.NoError(t, err)
	got := handled(id)
	require.Equal(t, caller.TraceID(), got.TraceID(), "the handler runs in the publisher's trace")

	// A signed event whose traceparent was replaced after signing.
	body, err := proto.Marshal(&eventsv1.TaskComplete{TaskId: "forged trace", WorkerId: "worker-1"})
	require.NoError(t, err)
	p := amqp.Publishing{MessageId: uuid.NewString(), Type: "events.v1.TaskComplete", ContentType: broker.ContentTypeProtobuf, Body: body}
	keyring(t, key).Sign(&p)
	p.Headers[broker.HeaderTraceparent] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ch, err := e.admin.Channel()
	require.NoError(t, err)
	defer ch.Close()
	require.NoError(t, ch.PublishWithContext(t.Context(), e.exchange, testKey, false, false, p))
	got = handled(p.MessageId)
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", got.TraceID().String(), "verified and applied, in the trace the header names")
}

func spanContext(t *testing.T, traceID, spanID string) trace.SpanContext {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	require.NoError(t, err)
	sid, err := trace.SpanIDFromHex(spanID)
	require.NoError(t, err)
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
}
