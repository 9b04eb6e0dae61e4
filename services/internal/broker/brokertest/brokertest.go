// Package brokertest gives a test its own exchange and queue names on the real broker,
// deleted when the test ends, so tests that publish and consume run in parallel.
package brokertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ates/ates/services/internal/broker"
)

// Names returns an exchange name private to t and one queue name per suffix, e.g.
// Names(t, "taskhandler"); the exchange, its dead-letter exchange and each queue with its
// retry and dead-letter queues are deleted at cleanup.
func Names(t testing.TB, suffixes ...string) (exchange string, queues []string) {
	t.Helper()
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := fmt.Sprintf("test.%.60s.%s", clean, hex.EncodeToString(b))
	exchange = prefix + ".events"
	for _, s := range suffixes {
		queues = append(queues, prefix+"."+s)
	}
	t.Cleanup(func() {
		conn, err := amqp.Dial(broker.TestURL())
		if err != nil {
			t.Logf("clean up broker: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Logf("clean up broker: %v", err)
			return
		}
		for _, q := range queues {
			for _, name := range []string{q, q + ".retry", broker.DeadLetterQueue(q)} {
				_, _ = ch.QueueDelete(name, false, false, false)
			}
		}
		_ = ch.ExchangeDelete(exchange, false, false)
		_ = ch.ExchangeDelete(exchange+".dlx", false, false)
	})
	return exchange, queues
}

// Dial connects to the test broker on exchange with fast reconnects; closed at cleanup.
func Dial(t testing.TB, exchange string) *broker.Conn {
	t.Helper()
	return DialWith(t, exchange, nil)
}

// DialWith is Dial with the configuration changed by edit first (when not nil), e.g. to
// go through a Proxy.
func DialWith(t testing.TB, exchange string, edit func(*broker.Config)) *broker.Conn {
	t.Helper()
	cfg := broker.Config{
		URL:          broker.TestURL(),
		AppID:        "test",
		Exchange:     exchange,
		Logger:       slog.New(slog.DiscardHandler),
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := broker.Dial(t.Context(), cfg)
	if err != nil {
		t.Fatalf("dial broker: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
