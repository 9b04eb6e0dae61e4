package dailyaccounting_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/ledgertest"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/mailsender"
	"github.com/ates/ates/services/mailsender/mailpittest"
)

// serve runs s until the test ends.
func serve(t testing.TB, s interface{ Serve(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// TestEveryWorkerGetsOneMailPerClosedDay runs the whole path: close → outbox → relay →
// RabbitMQ → mailsender → SMTP (Mailpit).
func TestEveryWorkerGetsOneMailPerClosedDay(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	book := ledgertest.New(t, pool)
	s := ledgertest.ThreeDays(book, days)
	exchange, queues := brokertest.Names(t, "mailsender")
	cfg, err := config.LoadFrom(map[string]string{})
	require.NoError(t, err)
	cfg.Exchange = exchange
	cfg.SMTP.Addr = mailpittest.Shared().SMTP
	// Only the wake-up after a close can deliver in time; and no start-up catch-up close.
	cfg.OutboxPollInterval = time.Hour
	cfg.CloseDaySchedule = "59 23 31 12 *"
	log := slog.New(slog.DiscardHandler)
	cfg.Queues.Mailsender = queues[0]
	cfg.MailsenderListen = config.Listen{HTTP: "127.0.0.1:0"}
	cfg.DailyaccountingListen = config.Listen{HTTP: "127.0.0.1:0"}

	queue := events.MailsenderQueueSpec(queues[0])
	sender, err := mailsender.New(cfg, &app.Deps{Pool: pool, Broker: brokertest.Dial(t, exchange)}, log)
	require.NoError(t, err)
	serve(t, sender)
	closer, err := dailyaccounting.New(cfg, &app.Deps{Pool: pool, Broker: brokertest.DialWith(t, exchange, func(c *broker.Config) {
		c.Signer = cfg.EventKeysOf(events.Dailyaccounting) // as app.Open sets it
	})}, log)
	require.NoError(t, err)
	serve(t, closer)
	// The queue exists before anything is published.
	require.Eventually(t, func() bool {
		return brokertest.Dial(t, exchange).DeclareQueue(t.Context(), queue) == nil
	}, 5*time.Second, 50*time.Millisecond)

	resp, err := http.Get("http://" + closer.HTTPAddr() + "/readyz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "readyz: %s", body)
	require.Equal(t, "postgres: ok\nrabbitmq: ok\nschema: ok\n", sortedLines(string(body)))

	closed, err := closer.CloseDay(t.Context(), day(t, days[2]))
	require.NoError(t, err)
	require.Len(t, closed, 3)

	mailpit := mailpittest.Shared()
	for _, w := range []ledgertest.User{s.Ann, s.Bob, s.Cid} {
		msgs := mailpit.Wait(t, w.Email, 3)
		require.Len(t, msgs, 3, "one mail per closed day for %s", w.Name)
		bySubject := map[string]mailpittest.Message{}
		for _, m := range msgs {
			bySubject[m.Subject] = m
		}
		for _, d := range days {
			m, ok := bySubject["Your aTES summary for "+d]
			require.True(t, ok, "%s's mail for %s", w.Name, d)
			want := s.Want[d][w.ID]
			require.Regexp(t, mailpittest.FigureLine("Opening balance", want.Opening), m.Text)
			require.Regexp(t, mailpittest.FigureLine("Rewards", want.Rewards), m.Text)
			require.Regexp(t, mailpittest.FigureLine("Fees", want.Fees), m.Text)
			require.Regexp(t, mailpittest.FigureLine("Closing balance", want.Closing), m.Text)
			switch {
			case want.Payout > 0:
				require.Contains(t, m.Text, "Paid out to you: "+strconv.FormatInt(want.Payout, 10)+".")
			case want.Carry < 0:
				require.Contains(t, m.Text, "Carried over to the next day: "+strconv.FormatInt(want.Carry, 10)+".")
			}
		}
	}

	t.Run("closing again mails nothing", func(t *testing.T) {
		closed, err := closer.CloseDay(t.Context(), day(t, days[2]))
		require.NoError(t, err)
		require.Empty(t, closed)
		time.Sleep(500 * time.Millisecond)
		for _, w := range []ledgertest.User{s.Ann, s.Bob, s.Cid} {
			require.Len(t, mailpit.Search(t, w.Email), 3)
		}
		require.Zero(t, book.Count("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
		require.Equal(t, 9, book.Count("SELECT count(*) FROM sent_mails"))
	})
}
