package broker_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/broker"
)

var errNotYet = errors.New("not yet")

func TestReconnectResumesPublishingAndConsuming(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)
	rec := &recorder{}
	consume(t, c, e.queue, 1, rec.handle)

	publish(t, c, "before")
	rec.waitCount(t, 1)

	require.True(t, c.CutConnection())
	require.Eventually(t, func() bool { return c.Connects() == 2 && c.Ready() }, waitFor, pollEvery)

	publish(t, c, "after")
	got := rec.waitCount(t, 2)
	require.Equal(t, "after", taskID(t, &got[1]))
	requireEmpty(t, c, e.queue)
}

func TestReconnectDeclaresTopologyAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, nil)
	e.declare(t, c, 0)

	// The broker forgets everything, as a node replaced without its data would.
	ch, err := e.admin.Channel()
	require.NoError(t, err)
	for _, q := range []string{e.queue, e.queue + ".retry", broker.DeadLetterQueue(e.queue)} {
		_, err := ch.QueueDelete(q, false, false, false)
		require.NoError(t, err)
	}
	for _, x := range []string{e.exchange, e.exchange + ".dlx"} {
		require.NoError(t, ch.ExchangeDelete(x, false, false))
	}

	require.True(t, c.CutConnection())
	require.Eventually(t, func() bool { return c.Connects() == 2 && c.Ready() }, waitFor, pollEvery)

	for _, q := range []string{e.queue, e.queue + ".retry", broker.DeadLetterQueue(e.queue)} {
		_, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err, "queue %s", q)
	}
	for _, x := range []string{e.exchange, e.exchange + ".dlx"} {
		require.NoError(t, ch.ExchangeDeclarePassive(x, "", true, false, false, false, nil), "exchange %s", x)
	}
	// Bindings are back too: the event is routed, and retries still work.
	rec := &recorder{fail: func(d broker.Delivery) error {
		if d.Attempt == 1 {
			return errNotYet
		}
		return nil
	}}
	consume(t, c, e.queue, 1, rec.handle)
	publish(t, c, "task-1")
	got := rec.waitCount(t, 5) // four tries in process, then through the retry queue
	require.Equal(t, 2, got[4].Attempt)
}
