package broker_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/broker"
)

func keyring(t *testing.T, s string) *broker.Keyring {
	t.Helper()
	k, err := broker.ParseKeyring(s)
	require.NoError(t, err)
	return k
}

// TestOnlyEventsSignedByTheTrustedProducerAreHandled: a consumer that verifies handles
// the events its producer signed, with the current key or an older one still on its
// keyring (rotation), and dead-letters unsigned events and events signed with another
// key, without handing them to the handler; each of those counts in
// ates_consumer_unverified_events_total.
func TestOnlyEventsSignedByTheTrustedProducerAreHandled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const (
		oldKey   = "k1:the-old-secret-of-the-producer"
		newKey   = "k2:the-new-secret-of-the-producer"
		otherKey = "k2:a-secret-the-consumer-never-saw"
	)
	signing := func(keys string) func(*broker.Config) {
		return func(c *broker.Config) { c.Signer = keyring(t, keys) }
	}
	c := e.dial(t, nil)
	e.declare(t, c, 0)
	reg := prometheus.NewRegistry()
	rec := &recorder{}
	consumeWith(t, c, broker.ConsumerConfig{
		Queue: e.queue, Prefetch: 1, Timeout: 5 * time.Second,
		Routes:  []broker.Route{broker.RawRoute(testKey, rec.handle)},
		Verify:  keyring(t, newKey+","+oldKey),
		Metrics: reg,
	})

	unsigned := publish(t, c, "unsigned")
	forged := publish(t, e.dial(t, signing(otherKey)), "forged")
	old := publish(t, e.dial(t, signing(oldKey)), "old key")
	current := publish(t, e.dial(t, signing(newKey+","+oldKey)), "new key")

	got := rec.waitCount(t, 2)
	require.ElementsMatch(t, []string{old, current}, []string{got[0].EventID, got[1].EventID})
	dead := map[string]string{}
	for range 2 {
		d := getEventually(t, c, broker.DeadLetterQueue(e.queue))
		dead[d.EventID] = d.DeadLetterReason()
	}
	require.Contains(t, dead[unsigned], "no ates-signature header")
	require.Contains(t, dead[forged], `key "k2" does not match`)
	require.Len(t, rec.deliveries(), 2, "the handler never saw the unverified events")
	require.Equal(t, 2.0, counterSum(t, reg, "ates_consumer_unverified_events_total"))
}

// TestKeyringsAreChecked: a keyring that is empty, malformed, has a short secret or
// names a key twice is refused, so a configuration mistake stops a service at start.
func TestKeyringsAreChecked(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "nokey", ":secret-long-enough-here", "k:short", "k:secret-long-enough-here,k:another-long-secret-x"} {
		_, err := broker.ParseKeyring(bad)
		require.Error(t, err, "%q", bad)
	}
}

// counterSum is the sum of the counter called name over its labels.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestAFloodOfForgedEventsIsBoundedAndCounted: a flood of events that can never be
// applied fills the dead-letter queue up to its bound and no further; the rest wait in
// the retry queue (nothing is dropped: each reaches the dead-letter queue once an
// operator makes room), and the flood shows in the metrics an alert watches.
func TestAFloodOfForgedEventsIsBoundedAndCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	require.NoError(t, c.DeclareQueue(t.Context(), broker.QueueSpec{Name: e.queue, RoutingKeys: []string{testKey}, DeadLetterMax: 3}))
	reg := prometheus.NewRegistry()
	rec := &recorder{}
	consumeWith(t, c, broker.ConsumerConfig{
		// One at a time: RabbitMQ enforces a quorum queue's bound once a message is in, so
		// copies racing each other could overshoot it by a few.
		Queue: e.queue, Prefetch: 1, Timeout: 5 * time.Second,
		Routes:   []broker.Route{broker.RawRoute(testKey, rec.handle)},
		Verify:   keyring(t, "k1:the-secret-of-the-real-producer"),
		RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Metrics: reg,
	})
	const flood = 6
	for i := range flood {
		publish(t, c, fmt.Sprintf("forged-%d", i))
	}
	dead := broker.DeadLetterQueue(e.queue)
	depth := func() int {
		n, err := c.QueueDepth(t.Context(), dead)
		require.NoError(t, err)
		return n
	}
	// RabbitMQ checks a quorum queue's bound once a message is in, so the queue can hold
	// one more than the bound per copy in flight: one here (prefetch 1).
	require.Eventually(t, func() bool { return depth() >= 3 }, waitFor, pollEvery, "the dead-letter queue fills to its bound")
	require.Eventually(t, func() bool { return counterSum(t, reg, "ates_consumer_unverified_events_total") >= flood+3 },
		waitFor, pollEvery, "the events it cannot take are tried again, and counted again")
	require.Never(t, func() bool { return depth() > 4 }, 500*time.Millisecond, pollEvery, "and grows no further")
	held := depth()
	require.Equal(t, float64(held), gaugeValue(t, reg, "ates_dead_letter_messages"))
	require.GreaterOrEqual(t, counterSum(t, reg, "ates_consumer_events_total"), float64(flood))
	require.Empty(t, rec.deliveries(), "no forged event reached the handler")

	// An operator makes room: the ones that waited arrive.
	n, err := c.PurgeDeadLetters(t.Context(), dead, nil)
	require.NoError(t, err)
	require.Equal(t, held, n)
	require.Eventually(t, func() bool { return depth() == flood-held }, waitFor, pollEvery, "the others were kept, not dropped")
}

// gaugeValue is the value of the gauge called name (one series).
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestAReplayedDeadLetterKeepsItsSignature: `ates dlq replay` republishes a dead letter
// with its original headers but the bookkeeping ones; the signature survives, so a
// verifying consumer handles the replayed event.
func TestAReplayedDeadLetterKeepsItsSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const key = "k1:the-secret-of-the-real-producer"
	c := e.dial(t, func(c *broker.Config) { c.Signer = keyring(t, key) })
	e.declare(t, c, 0)
	var failed atomic.Bool
	rec := &recorder{fail: func(broker.Delivery) error {
		if failed.CompareAndSwap(false, true) {
			return broker.Permanent(errors.New("not yet"))
		}
		return nil
	}}
	consumeWith(t, c, broker.ConsumerConfig{
		Queue: e.queue, Prefetch: 1, Timeout: 5 * time.Second,
		Routes: []broker.Route{broker.RawRoute(testKey, rec.handle)},
		Verify: keyring(t, key),
	})
	id := publish(t, c, "replayed")
	dead := broker.DeadLetterQueue(e.queue)
	require.Eventually(t, func() bool {
		n, err := c.QueueDepth(t.Context(), dead)
		require.NoError(t, err)
		return n == 1
	}, waitFor, pollEvery)

	replayed, err := c.ReplayDeadLetters(t.Context(), dead, nil)
	require.NoError(t, err)
	require.Equal(t, []string{id}, replayed)
	got := rec.waitCount(t, 2)
	require.Equal(t, id, got[1].EventID, "the replayed event passed verification and was handled")
}

// TestForgedRoutingKeysDoNotMakeMetricSeries: the routing key a consumer sees comes from
// the message (for a copy from the dead-letter exchange, from a header any consumer's user
// can write), so labelling metrics with it as given let a flood of messages, each with
// its own made-up key, create one series each in the consumer's metrics and in
// Prometheus, without bound. Keys the consumer has no route for share one label.
func TestForgedRoutingKeysDoNotMakeMetricSeries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)
	reg := prometheus.NewRegistry()
	rec := &recorder{}
	consumeWith(t, c, broker.ConsumerConfig{
		Queue: e.queue, Prefetch: 4, Timeout: 5 * time.Second,
		Routes:  []broker.Route{broker.RawRoute(testKey, rec.handle)},
		Verify:  keyring(t, "k1:the-secret-of-the-real-producer"),
		Metrics: reg,
	})
	ch, err := e.admin.Channel()
	require.NoError(t, err)
	defer ch.Close()
	const flood = 30
	for i := range flood {
		// What any consumer's user may do: a copy through the dead-letter exchange.
		require.NoError(t, ch.Publish(e.exchange+".dlx", e.queue, false, false, amqp.Publishing{
			MessageId: fmt.Sprintf("forged-%d", i), Body: []byte("x"),
			Headers: amqp.Table{"x-ates-routing-key": fmt.Sprintf("made.up.%d", i)},
		}))
	}
	require.Eventually(t, func() bool { return counterSum(t, reg, "ates_consumer_unverified_events_total") >= flood },
		waitFor, pollEvery, "every forged event is dead-lettered and counted")
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		require.LessOrEqual(t, len(f.GetMetric()), 2, "%s has a series per forged routing key", f.GetName())
	}
	require.Empty(t, rec.deliveries())
}
