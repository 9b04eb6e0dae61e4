package broker_test

import (
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/tlsconf"
	"github.com/ates/ates/services/internal/tlsconf/tlstest"
)

// TestDialAMQPS: an amqps:// URL connects over TLS trusting Config.TLS's CA, and a broker
// certificate no trusted CA signed is refused. The broker's TLS listener is a
// TLS-terminating proxy in front of the test RabbitMQ.
func TestDialAMQPS(t *testing.T) {
	t.Parallel()
	files := tlstest.New(t)
	plain, err := url.Parse(broker.TestURL())
	require.NoError(t, err)
	secure := *plain
	secure.Scheme = "amqps"
	secure.Host = tlstest.Terminate(t, files.ServerConfig(t), plain.Host, nil)
	trustCA, err := tlsconf.Client(files.CA)
	require.NoError(t, err)

	t.Run("trusting the CA it connects, publishes and consumes", func(t *testing.T) {
		e := newEnv(t)
		c := e.dial(t, func(cfg *broker.Config) {
			cfg.URL = secure.String()
			cfg.TLS = trustCA
		})
		require.NoError(t, c.Check(t.Context()))
		e.declare(t, c, 0)
		rec := &recorder{}
		consume(t, c, e.queue, 1, rec.handle)
		publish(t, c, "over-tls")
		got := rec.waitCount(t, 1)
		require.Equal(t, "over-tls", taskID(t, &got[0]))
	})

	t.Run("without the CA the broker's certificate is refused", func(t *testing.T) {
		_, err := broker.Dial(t.Context(), broker.Config{
			URL:              secure.String(),
			Exchange:         "unused",
			Logger:           slog.New(slog.DiscardHandler),
			HandshakeTimeout: 2 * time.Second,
		})
		require.ErrorContains(t, err, "certificate")
	})
}
