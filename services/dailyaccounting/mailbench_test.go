package dailyaccounting_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/dailyaccounting/closetest"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/mailsender"
	"github.com/ates/ates/services/mailsender/mailpittest"
)

// BenchmarkMailDelivery delivers the summary mails of a closed day of 10,000 workers
// through the outbox relay, RabbitMQ and mailsender into a private Mailpit (issue 8: at
// least 2,000 mails/s), and reports the rate beside Mailpit's own intake from a bare
// SMTP sender in the same run. Run it once:
//
//	go test -run '^$' -bench MailDelivery -benchtime 1x ./services/dailyaccounting
func BenchmarkMailDelivery(b *testing.B) {
	const mails, bareSessions = 10_000, 8
	ctx := context.Background()
	date := "2026-02-10"
	day, err := bizday.Parse(date)
	if err != nil {
		b.Fatal(err)
	}
	mailpit := mailpittest.Start(b, "--max", "0")
	bare := mailpit.BareSend(b, mails, bareSessions)
	bareRate := mails / bare.Seconds()
	b.Logf("bare SMTP: %d mails in %.2fs, %.0f mails/s", mails, bare.Seconds(), bareRate)

	b.StopTimer()
	var took time.Duration
	for range b.N {
		pool, url := pgtest.NewDB(b)
		closetest.Seed(b, pool, date, mails, mails)
		log := slog.New(slog.DiscardHandler)
		if _, err := dailyaccounting.NewCloser(pool, time.UTC, log).CloseDay(ctx, day); err != nil {
			b.Fatal(err)
		}
		exchange, queues := brokertest.Names(b, "mailsender")
		queue := events.MailsenderQueueSpec(queues[0])
		if err := brokertest.Dial(b, exchange).DeclareQueue(ctx, queue); err != nil {
			b.Fatal(err)
		}
		cfg, err := config.LoadFrom(map[string]string{})
		if err != nil {
			b.Fatal(err)
		}
		cfg.Exchange = exchange
		cfg.SMTP.Addr = mailpit.SMTP
		cfg.CloseDaySchedule = "59 23 31 12 *" // no catch-up close at start-up
		cfg.Queues.Mailsender = queue.Name
		cfg.MailsenderListen = config.Listen{HTTP: "127.0.0.1:0"}
		cfg.DailyaccountingListen = config.Listen{HTTP: "127.0.0.1:0"}
		// A database connection for each mail sent at once, as README advises.
		senderPool, err := pgutil.Connect(ctx, fmt.Sprintf("%s&pool_max_conns=%d", url, cfg.MailsenderPrefetch+2))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(senderPool.Close)
		sender, err := mailsender.New(cfg, &app.Deps{Pool: senderPool, Broker: brokertest.Dial(b, exchange)}, log)
		if err != nil {
			b.Fatal(err)
		}
		relay, err := dailyaccounting.New(cfg, &app.Deps{Pool: pool, Broker: brokertest.DialWith(b, exchange, func(c *broker.Config) {
			c.Signer = cfg.EventKeysOf(events.Dailyaccounting) // as app.Open sets it
		})}, log)
		if err != nil {
			b.Fatal(err)
		}
		before := mailpit.Total(b)
		start := time.Now()
		b.StartTimer()
		serve(b, sender)
		serve(b, relay)
		// When the relay is done, to tell its share from mailsender's.
		relayed := make(chan time.Duration, 1)
		go func() {
			for {
				var unsent int
				if err := pool.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE sent_at IS NULL").Scan(&unsent); err != nil || unsent == 0 {
					relayed <- time.Since(start)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		end := mailpit.WaitTotal(b, before+mails, 5*time.Minute)
		b.Logf("the relay published the outbox in %.2fs", (<-relayed).Seconds())
		b.StopTimer()
		took += end.Sub(start)
		b.Logf("relay + mailsender: %d mails in %.2fs, %.0f mails/s", mails, end.Sub(start).Seconds(), mails/end.Sub(start).Seconds())
	}
	rate := float64(b.N*mails) / took.Seconds()
	b.ReportMetric(rate, "mails/s")
	b.ReportMetric(bareRate, "bare-mails/s")
	b.ReportMetric(rate/bareRate, "rate/bare")
}
