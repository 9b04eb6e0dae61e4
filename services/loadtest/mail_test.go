//go:build loadtest

package loadtest

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/systemtest"
	"github.com/ates/ates/services/mailsender/mailpittest"
)

// sendEmailType is the message_type of a send_email outbox row.
var sendEmailType = string((&eventsv1.SendEmail{}).ProtoReflect().Descriptor().FullName())

// mailPhase measures how fast the system mails: LOADTEST_MAILS summary mails (default
// 20,000) written into the outbox at once, as a close writes them, delivered by the
// running dailyaccounting relay, RabbitMQ and mailsender into a private Mailpit, against
// that Mailpit's intake from a bare SMTP sender (smtp_bare) in the same run. The
// system's mailsender sends to the shared Mailpit, so for the phase it is replaced by
// one sending to the private one (with a database connection for each mail in flight,
// as README advises), and restarted as it was afterwards.
func mailPhase(t *testing.T, cfg config, s *system) []result {
	t.Helper()
	mails := 20_000
	if cfg.smoke {
		mails = 50
	}
	mails = envInt(t, "LOADTEST_MAILS", mails)
	const sessions = 16 // the bare sender's, as many as mailsender's default prefetch
	ctx := context.Background()
	mailpit := mailpittest.Start(t, "--max", "0")

	bare := mailpit.BareSend(t, mails, sessions)
	base := result{Name: "smtp_bare", Kind: "baseline", Calls: mails, Seconds: bare.Seconds(), Throughput: float64(mails) / bare.Seconds()}
	t.Logf("mail: bare SMTP put %d mails into Mailpit in %.2fs, %.0f mails/s", mails, bare.Seconds(), base.Throughput)

	if p := s.procs["mailsender"]; p != nil {
		p.kill()
	}
	dbURL, err := url.Parse(s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := dbURL.Query()
	q.Set("pool_max_conns", "20")
	dbURL.RawQuery = q.Encode()
	httpAddr := systemtest.FreeAddr(t)
	sender := startProc(t, s.bin, s.logDir, "mailsender-private-mailpit", s.env(
		"ATES_DATABASE_URL="+dbURL.String(),
		"ATES_SMTP_ADDR="+mailpit.SMTP,
		"ATES_MAILSENDER_HTTP_ADDR="+httpAddr,
		"ATES_LOG_LEVEL=warn", // a line per mail would measure the log
	), "mailsender")
	sender.httpAddr = httpAddr
	sender.waitReady(t, time.Minute)
	defer func() {
		sender.kill()
		s.start(t, "mailsender")
	}()

	batch := uuid.NewString()[:8]
	rows := make([][]any, mails)
	for i := range rows {
		id := uuid.New()
		payload, err := proto.Marshal(&eventsv1.SendEmail{
			UserId: id.String(), Email: fmt.Sprintf("w%d-%s@mail-phase.example.com", i, batch), Name: fmt.Sprintf("Worker %d", i),
			Date: "2026-02-10", Opening: -5, Rewards: 40, Fees: -12, Closing: 23, Payout: 23,
		})
		if err != nil {
			t.Fatal(err)
		}
		rows[i] = []any{id, events.SendEmail, sendEmailType, payload}
	}
	before := mailpit.Total(t)
	start := time.Now()
	if _, err := s.db.CopyFrom(ctx, pgx.Identifier{"outbox"}, []string{"event_id", "routing_key", "message_type", "payload"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatalf("fill the outbox: %v", err)
	}
	end := mailpit.WaitTotal(t, before+mails, 10*time.Minute)
	took := end.Sub(start)

	// Each mail is recorded once the server took it: the last few commit just after.
	var recorded int
	if !waitFor(30*time.Second, func() bool {
		err := s.db.QueryRow(ctx, "SELECT count(*) FROM sent_mails WHERE email LIKE $1", "%-"+batch+"@mail-phase.example.com").Scan(&recorded)
		return err == nil && recorded == mails
	}) {
		t.Fatalf("mailsender recorded %d of %d mails as sent", recorded, mails)
	}
	delivered := result{Name: "mail_delivery", Kind: "workload", Calls: mails, Seconds: took.Seconds(), Throughput: float64(mails) / took.Seconds(), Baseline: base.Name,
		goal: atLeastRPS(2000), Note: "req/s is mails delivered into Mailpit per second, outbox to inbox"}
	ratio := delivered.Throughput / base.Throughput
	delivered.Ratio = &ratio
	t.Logf("mail: relay + mailsender delivered %d mails in %.2fs, %.0f mails/s (%.2f of bare SMTP)", mails, took.Seconds(), delivered.Throughput, ratio)
	return []result{base, delivered}
}
