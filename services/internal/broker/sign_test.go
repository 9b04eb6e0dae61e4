package broker_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
