package events_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/events/eventstest"
)

// TestAForeignMessageCannotStallAnotherConsumersRetries: every consumer may write to the
// shared dead-letter exchange (its retry and dead-letter copies go there), and a direct
// exchange has no per-routing-key permissions, so mailsender's user can put a message into
// taskhandler's retry queue. A retry queue only expires the message at its head: one put
// there without an expiration (or with a huge one) would hold back every retry behind it,
// for ever. The retry queues' TTL policy (ates broker setup) bounds how long any message
// stays there, so taskhandler's own retries still come back, and the intruder's goes to
// taskhandler's queue, where it is dead-lettered for its missing signature.
func TestAForeignMessageCannotStallAnotherConsumersRetries(t *testing.T) {
	t.Parallel()
	exchange, queues := brokertest.Names(t, "taskhandler", "mailsender")
	names := events.Names{Exchange: exchange, TaskhandlerQueue: queues[0], MailsenderQueue: queues[1]}
	urls := eventstest.ServiceUsers(t, names)
	dlx, retry := exchange+".dlx", broker.RetryQueue(names.TaskhandlerQueue)

	publish := func(url string, p amqp.Publishing) {
		conn, err := amqp.Dial(url)
		require.NoError(t, err)
		defer conn.Close()
		ch, err := conn.Channel()
		require.NoError(t, err)
		require.NoError(t, ch.Confirm(false))
		c, err := ch.PublishWithDeferredConfirm(dlx, retry, false, false, p)
		require.NoError(t, err)
		require.True(t, c.Wait(), "the broker took the copy")
	}
	// The intruder's message, never to expire by itself.
	publish(urls[events.Mailsender], amqp.Publishing{MessageId: "blocker", Body: []byte("x")})
	// taskhandler's own retry copy, due back in 50 ms.
	publish(urls[events.Taskhandler], amqp.Publishing{MessageId: "mine", Expiration: "50", Body: []byte("y")})

	th := brokertest.DialWith(t, exchange, func(c *broker.Config) { c.URL = urls[events.Taskhandler] })
	require.NoError(t, th.DeclareQueue(t.Context(), events.TaskhandlerQueueSpec(names.TaskhandlerQueue)))
	got := map[string]bool{}
	require.Eventually(t, func() bool {
		d, err := th.Get(t.Context(), names.TaskhandlerQueue)
		require.NoError(t, err)
		if d != nil {
			got[d.EventID] = true
		}
		return got["mine"]
	}, 15*time.Second, 50*time.Millisecond, "taskhandler's retry came back despite the message ahead of it")
}
