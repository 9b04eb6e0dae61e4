package mailsender_test

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/mailsender/mailpittest"
)

// tags matches HTML tags, to read the HTML body's text.
var tags = regexp.MustCompile(`<[^>]*>`)

func TestSummaryMail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	mailpit := mailpittest.Shared()

	for _, tc := range []struct {
		name    string
		event   *eventsv1.SendEmail
		outcome string
	}{
		{"a profitable day says what was paid out", summary(-20, 57, -12), "Paid out to you: 25."},
		{"a losing day says what is carried over", summary(-5, 10, -20), "Carried over to the next day: -15."},
		{"a day that ends at zero says nothing moves", summary(0, 20, -20), "Nothing was paid out and nothing is carried over."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := tc.event
			id := e.publish(t, ev)
			msgs := mailpit.Wait(t, ev.GetEmail(), 1)
			require.Len(t, msgs, 1)
			m := msgs[0]
			require.Equal(t, "Your aTES summary for 2026-03-04", m.Subject)
			require.Equal(t, []mailpittest.Address{{Name: ev.GetName(), Address: ev.GetEmail()}}, m.To)
			require.Equal(t, "noreply@ates.local", m.From.Address)
			require.Equal(t, id+"@ates", m.MessageID)
			require.Contains(t, m.Text, "Hello "+ev.GetName()+",")
			require.Contains(t, m.Text, tc.outcome)
			require.Contains(t, m.HTML, "Hello "+ev.GetName()+",")
			require.Contains(t, tags.ReplaceAllString(m.HTML, ""), tc.outcome)
			require.Regexp(t, mailpittest.FigureLine("Opening balance", ev.GetOpening()), m.Text)
			require.Regexp(t, mailpittest.FigureLine("Rewards", ev.GetRewards()), m.Text)
			require.Regexp(t, mailpittest.FigureLine("Fees", ev.GetFees()), m.Text)
			require.Regexp(t, mailpittest.FigureLine("Closing balance", ev.GetClosing()), m.Text)
			require.Contains(t, m.HTML, "<strong>"+strconv.FormatInt(ev.GetClosing(), 10)+"</strong>")
			// The record commits just after the SMTP server accepted the mail.
			require.Eventually(t, func() bool { return e.sentMails(t, id) == 1 }, 5*time.Second, 10*time.Millisecond)
		})
	}

	t.Run("quotes and a comma in a name add no recipient", func(t *testing.T) {
		t.Parallel()
		ev := summary(0, 30, -10)
		ev.Name = `Eve", "boss@example.com`
		e.publish(t, ev)
		m := mailpit.Wait(t, ev.GetEmail(), 1)[0]
		require.Equal(t, []mailpittest.Address{{Name: ev.Name, Address: ev.GetEmail()}}, m.To)
	})

	t.Run("markup in a name is escaped in the HTML body", func(t *testing.T) {
		t.Parallel()
		ev := summary(0, 30, -10)
		ev.Name = `Zoë <b>"Bold"</b> & Co`
		e.publish(t, ev)
		m := mailpit.Wait(t, ev.GetEmail(), 1)[0]
		require.Equal(t, []mailpittest.Address{{Name: ev.Name, Address: ev.GetEmail()}}, m.To, "the name is encoded in the To header, not mangled")
		require.Contains(t, m.Text, "Hello "+ev.Name+",")
		require.Contains(t, m.HTML, "Zoë &lt;b&gt;&#34;Bold&#34;&lt;/b&gt; &amp; Co")
		require.NotContains(t, m.HTML, "<b>")
	})
}

func TestSendsWithSMTPCredentials(t *testing.T) {
	t.Parallel()
	// The shared Mailpit accepts any credentials over a plain connection.
	e := newEnv(t, options{smtp: config.SMTP{Username: "ates", Password: "secret", From: "Payroll <payroll@ates.local>"}})
	ev := summary(0, 40, -15)
	e.publish(t, ev)
	m := mailpittest.Shared().Wait(t, ev.GetEmail(), 1)[0]
	require.Equal(t, mailpittest.Address{Name: "Payroll", Address: "payroll@ates.local"}, m.From)
}

func TestRedeliveredEventSendsOneMail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ev := summary(-3, 25, -10)
	id := e.publish(t, ev)
	e.publish(t, ev, broker.WithEventID(id))

	require.Eventually(t, func() bool { return e.mails(t, "sent") == 1 && e.mails(t, "duplicate") == 1 },
		10*time.Second, 20*time.Millisecond, "both deliveries handled")
	msgs := mailpittest.Shared().Search(t, ev.GetEmail())
	require.Len(t, msgs, 1, "one mail for two deliveries of one event")
	require.Equal(t, 1, e.sentMails(t, id))
}

func TestBadEventsAreDeadLetteredAndConsumingGoesOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	raw, err := amqp.Dial(broker.TestURL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = raw.Close() })
	ch, err := raw.Channel()
	require.NoError(t, err)

	undecodable := uuid.NewString()
	p := amqp.Publishing{
		MessageId: undecodable, Type: "events.v1.SendEmail", ContentType: broker.ContentTypeProtobuf,
		Body: []byte{0xff, 0xff, 0xff, 0xff},
	}
	e.signer.Sign(&p) // a bad body from the trusted producer itself
	require.NoError(t, ch.PublishWithContext(t.Context(), e.exchange, events.SendEmail, true, false, p))
	wrongType, err := e.pub.Publish(t.Context(), events.SendEmail, &eventsv1.TaskComplete{TaskId: uuid.NewString(), WorkerId: uuid.NewString()})
	require.NoError(t, err)
	bad := summary(0, 20, -10)
	bad.Email = "not-an-address"
	invalid := e.publish(t, bad)

	dead := e.dead(t, 3)
	for id, want := range map[string]string{
		undecodable: "unmarshal",
		wrongType:   `type "events.v1.TaskComplete"`,
		invalid:     "email",
	} {
		require.Contains(t, dead, id)
		require.Contains(t, dead[id].DeadLetterReason(), want)
		require.Equal(t, 1, dead[id].Attempt, "dead-lettered without retries")
	}

	good := summary(0, 30, -15)
	e.publish(t, good)
	mailpittest.Shared().Wait(t, good.GetEmail(), 1)
}

// TestSMTPFailures: a server that is away or says "try later" is retried for as long as
// it takes and never dead-lettered; only a permanent refusal is.
func TestSMTPFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		server func(t *testing.T) string
		reason string
	}{
		{"a refused connection is retried, never dead-lettered", closedPort, ""},
		{"a 4xx reply is retried, never dead-lettered", func(t *testing.T) string {
			return mailpittest.Start(t, "--chaos-triggers", "Recipient:451:100").SMTP
		}, ""},
		{"a 5xx reply goes to the dead-letter queue at once", func(t *testing.T) string {
			return mailpittest.Start(t, "--chaos-triggers", "Recipient:550:100").SMTP
		}, "550"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{smtp: config.SMTP{Addr: tc.server(t)}})
			id := e.publish(t, summary(0, 20, -10))
			if tc.reason != "" {
				d := e.dead(t, 1)[id]
				require.NotNil(t, d)
				require.Equal(t, 1, d.Attempt)
				require.Contains(t, d.DeadLetterReason(), tc.reason)
				require.Equal(t, 1, e.mails(t, "failed"), "no retry after a permanent refusal")
			} else {
				// Many more attempts than the old limit of five, and still nothing is dead.
				require.Eventually(t, func() bool { return e.mails(t, "failed") >= 8 }, 15*time.Second, 20*time.Millisecond)
				n, err := e.pub.QueueDepth(t.Context(), broker.DeadLetterQueue(e.queue))
				require.NoError(t, err)
				require.Zero(t, n, "a transient failure is never dead-lettered")
			}
			require.Zero(t, e.sentMails(t, id), "a failed send leaves no record")
		})
	}
}

func TestMailFailingOnceIsSentOnRetry(t *testing.T) {
	t.Parallel()
	mailpit := mailpittest.Start(t, "--enable-chaos", "--chaos-triggers", "Recipient:451:100")
	e := newEnv(t, options{smtp: config.SMTP{Addr: mailpit.SMTP}})
	ev := summary(0, 35, -10)
	id := e.publish(t, ev)

	require.Eventually(t, func() bool { return e.mails(t, "failed") >= 1 }, 10*time.Second, 20*time.Millisecond)
	mailpit.StopChaos(t) // the server recovers
	msgs := mailpit.Wait(t, ev.GetEmail(), 1)
	require.Len(t, msgs, 1)
	require.Equal(t, id+"@ates", msgs[0].MessageID)
	// The record commits just after the SMTP server accepted the mail.
	require.Eventually(t, func() bool { return e.sentMails(t, id) == 1 }, 5*time.Second, 10*time.Millisecond)
}

// TestAForgedSummaryIsNotMailed: a send_email that dailyaccounting did not sign (someone
// who can publish to the exchange, writing a "summary" with a link of their choosing) is
// dead-lettered unread, and no mail leaves from the aTES sender.
func TestAForgedSummaryIsNotMailed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	forger := brokertest.Dial(t, e.exchange) // the broker's password, not the signing key
	phish := summary(0, 40, -10)
	phish.Name = "Please log in at http://evil.example to claim your payout"
	id, err := forger.Publish(t.Context(), events.SendEmail, phish)
	require.NoError(t, err)

	dead := e.dead(t, 1)
	require.Contains(t, dead[id].DeadLetterReason(), "not signed by its trusted producer")
	require.Zero(t, e.sentMails(t, id))
	// A signed summary published after it is mailed, so the forged one had its turn.
	good := summary(0, 30, -15)
	e.publish(t, good)
	mailpittest.Shared().Wait(t, good.GetEmail(), 1)
	require.Empty(t, mailpittest.Shared().Search(t, phish.GetEmail()), "no mail for the forged summary")
}
