package mailsender_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/mailsender"
	"github.com/ates/ates/services/mailsender/mailpittest"
)

// env is a running mailsender on a private database, exchange and queue.
type env struct {
	pool     *pgxpool.Pool
	exchange string
	queue    string
	pub      *broker.Conn    // the publishing side, as dailyaccounting would be
	signer   *broker.Keyring // dailyaccounting's keys, which mailsender trusts
	svc      *mailsender.Service
}

// options change what newEnv runs.
type options struct {
	smtp config.SMTP // Addr defaults to the shared Mailpit
}

func newEnv(t *testing.T, opts options) *env {
	t.Helper()
	pool, _ := pgtest.NewDB(t)
	exchange, queues := brokertest.Names(t, "mailsender")
	cfg, err := config.LoadFrom(map[string]string{})
	require.NoError(t, err)
	cfg.Exchange = exchange
	cfg.SMTP = opts.smtp
	if cfg.SMTP.Addr == "" {
		cfg.SMTP.Addr = mailpittest.Shared().SMTP
	}
	if cfg.SMTP.TLS == "" {
		cfg.SMTP.TLS = "none"
	}
	if cfg.SMTP.From == "" {
		cfg.SMTP.From = "aTES <noreply@ates.local>"
	}
	cfg.EventTimeout = 5 * time.Second
	cfg.EventRetryMin, cfg.EventRetryMax = 20*time.Millisecond, 100*time.Millisecond
	e := &env{pool: pool, exchange: exchange, queue: queues[0], signer: cfg.EventKeysOf(events.Dailyaccounting)}
	e.pub = brokertest.DialWith(t, exchange, func(c *broker.Config) { c.Signer = e.signer }) // as dailyaccounting publishes
	deps := &app.Deps{Pool: pool, Broker: brokertest.Dial(t, exchange)}
	queue := events.MailsenderQueueSpec(e.queue)
	cfg.Queues.Mailsender = e.queue
	cfg.MailsenderListen = config.Listen{HTTP: "127.0.0.1:0"}
	e.svc, err = mailsender.New(cfg, deps, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	// Publishing before the queue exists would be unroutable.
	require.Eventually(t, func() bool {
		return e.pub.DeclareQueue(t.Context(), queue) == nil
	}, 5*time.Second, 20*time.Millisecond)
	return e
}

// summary is a SendEmail to a fresh address.
func summary(opening, rewards, fees int64) *eventsv1.SendEmail {
	id := uuid.New()
	closing := opening + rewards + fees
	return &eventsv1.SendEmail{
		UserId:  id.String(),
		Email:   fmt.Sprintf("worker-%s@example.com", id),
		Name:    "Wendy " + id.String()[:4],
		Date:    "2026-03-04",
		Opening: opening, Rewards: rewards, Fees: fees, Closing: closing,
		Payout: max(closing, 0), Carry: min(closing, 0),
	}
}

// publish publishes ev as dailyaccounting's relay would and returns the event id.
func (e *env) publish(t *testing.T, ev *eventsv1.SendEmail, opts ...broker.PublishOption) string {
	t.Helper()
	id, err := e.pub.Publish(t.Context(), events.SendEmail, ev, opts...)
	require.NoError(t, err)
	return id
}

// dead waits for n messages in the dead-letter queue and returns them by event id.
func (e *env) dead(t *testing.T, n int) map[string]*broker.Delivery {
	t.Helper()
	out := map[string]*broker.Delivery{}
	require.Eventually(t, func() bool {
		d, err := e.pub.Get(t.Context(), broker.DeadLetterQueue(e.queue))
		require.NoError(t, err)
		if d != nil {
			out[d.EventID] = d
		}
		return len(out) >= n
	}, 15*time.Second, 20*time.Millisecond, "dead letters")
	return out
}

// mails reads mailsender's counter of handled events with result.
func (e *env) mails(t *testing.T, result string) int {
	t.Helper()
	resp, err := http.Get("http://" + e.svc.HTTPAddr() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^ates_mailsender_mails_total\{result="` + result + `",service="mailsender"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return n
}

// sentMails counts the sent_mails rows of an event.
func (e *env) sentMails(t *testing.T, eventID string) int {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(t.Context(), "SELECT count(*) FROM sent_mails WHERE event_id = $1", eventID).Scan(&n))
	return n
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
