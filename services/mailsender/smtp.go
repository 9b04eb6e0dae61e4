package mailsender

import (
	"context"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
)

// mailer sends summary mails through one SMTP server over a few persistent sessions:
// each mail is MAIL, RCPT, DATA and RSET on a session nobody else uses meanwhile, and
// the session goes back to the idle ones only once the caller recorded the mail. A
// connection per mail (greeting, EHLO, QUIT each time) capped mailsender near a
// hundred mails a second. A session that failed is closed, never reused.
type mailer struct {
	client *mail.Client
	from   string
	idle   chan *session // sessions ready for the next mail, at most the consumer's prefetch
}

// session is an open SMTP connection and when it last carried a mail.
type session struct {
	conn *smtp.Client
	used time.Time
}

// maxIdle is how long an idle session is trusted: servers hang up on sessions idle for
// minutes, and a day's mails come in one burst.
const maxIdle = 30 * time.Second

// newMailer checks cfg and prepares the client; it does not connect.
// sessions is how many idle sessions it keeps: as many as mails are sent at once.
func newMailer(cfg config.SMTP, timeout time.Duration, sessions int) (*mailer, error) {
	host, portText, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ATES_SMTP_ADDR %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("ATES_SMTP_ADDR %q: bad port: %w", cfg.Addr, err)
	}
	if _, err := netmail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("ATES_SMTP_FROM %q: %w", cfg.From, err)
	}
	// No NOOP before each mail: on a session that went stale the MAIL command fails just
	// as well, and send then retries on a new session.
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(timeout), mail.WithoutNoop()}
	switch cfg.TLS {
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case "starttls-required":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "tls":
		opts = append(opts, mail.WithSSL())
	default:
		return nil, fmt.Errorf("ATES_SMTP_TLS %q: want none, starttls, starttls-required or tls", cfg.TLS)
	}
	if cfg.Username != "" {
		auth := mail.SMTPAuthAutoDiscover
		if cfg.TLS == "none" {
			// The operator chose a plain connection with credentials (a local relay).
			auth = mail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	client, err := mail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP client for %s: %w", cfg.Addr, err)
	}
	return &mailer{client: client, from: cfg.From, idle: make(chan *session, sessions)}, nil
}

// send mails ev's summary and returns once the SMTP server accepted it (its reply to
// DATA), with done still to call: the caller records the mail first, and only then does
// done hand the session to the next mail, so the window in which a crash re-sends an
// accepted mail is as short as SMTP allows and never spans another mail. A session that
// fails after the server accepted (at RSET) does not count as a failed send; it is
// closed. The Message-ID derives from the event id, so a mail sent twice in that window
// is recognisable as one. Failures retrying cannot fix are marked broker.Permanent.
func (m *mailer) send(ctx context.Context, eventID string, ev *eventsv1.SendEmail) (done func(), err error) {
	s := summaryOf(ev)
	text, html, err := render(s)
	if err != nil {
		return nil, broker.Permanent(err)
	}
	msg := mail.NewMsg()
	if err := msg.From(m.from); err != nil {
		return nil, broker.Permanent(fmt.Errorf("from %q: %w", m.from, err))
	}
	// net/mail quotes and escapes the display name (and RFC 2047-encodes non-ASCII), so
	// that quotes, angle brackets and commas in a name reach the header intact;
	// go-mail's AddToFormat pastes the name between quotes as it is.
	to := (&netmail.Address{Name: ev.GetName(), Address: ev.GetEmail()}).String()
	if err := msg.To(to); err != nil {
		return nil, broker.Permanent(fmt.Errorf("to %q: %w", ev.GetEmail(), err))
	}
	msg.Subject(subject(s))
	msg.SetMessageIDWithValue(eventID + "@ates")
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, text)
	msg.AddAlternativeString(mail.TypeTextHTML, html)
	for {
		ses, reused, err := m.take(ctx)
		if err != nil {
			return nil, classify(fmt.Errorf("connect to the SMTP server for %s: %w", ev.GetEmail(), err))
		}
		err = m.client.SendWithSMTPClient(ses.conn, msg)
		var se *mail.SendError
		switch {
		case err == nil:
			return func() { m.release(ses) }, nil
		case msg.IsDelivered():
			// The server took the mail; only the RSET after it failed.
			return func() { m.hangUp(ses) }, nil
		case reused && errors.As(err, &se) && se.ErrorCode() == 0 &&
			(se.Reason == mail.ErrConnCheck || se.Reason == mail.ErrSMTPMailFrom):
			// The idle session died (the server hung up) before it carried anything of
			// this mail: no reply, only a broken connection. A new session sends it.
			m.hangUp(ses)
			continue
		}
		m.hangUp(ses)
		return nil, classify(fmt.Errorf("send mail to %s: %w", ev.GetEmail(), err))
	}
}

// take returns an idle session, or a new one if none is left or fresh enough.
func (m *mailer) take(ctx context.Context) (ses *session, reused bool, err error) {
	for {
		select {
		case ses := <-m.idle:
			if time.Since(ses.used) < maxIdle {
				return ses, true, nil
			}
			m.hangUp(ses)
			continue
		default:
		}
		conn, err := m.client.DialToSMTPClientWithContext(ctx)
		if err != nil {
			return nil, false, err
		}
		return &session{conn: conn}, false, nil
	}
}

// release makes ses ready for the next mail, or closes it if enough are idle.
func (m *mailer) release(ses *session) {
	ses.used = time.Now()
	select {
	case m.idle <- ses:
	default:
		m.hangUp(ses)
	}
}

// hangUp closes ses with QUIT, whose answer does not matter.
func (m *mailer) hangUp(ses *session) { _ = m.client.CloseWithSMTPClient(ses.conn) }

// close hangs up every idle session.
func (m *mailer) close() {
	for {
		select {
		case ses := <-m.idle:
			m.hangUp(ses)
		default:
			return
		}
	}
}

// classify marks SMTP failures as permanent when the server refused for good (a 5xx
// reply) or the message cannot be built; everything else (connection refused, timeouts,
// 4xx replies) stays an ordinary error, which the broker retries later.
func classify(err error) error {
	var se *mail.SendError
	if errors.As(err, &se) {
		switch code := se.ErrorCode(); {
		case code >= 500:
			return broker.Permanent(err)
		case code >= 400:
			return err
		}
		switch se.Reason {
		case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
			return broker.Permanent(err)
		}
		return err
	}
	// Replies during the dial: greeting, EHLO, STARTTLS, AUTH.
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return broker.Permanent(err)
	}
	return err
}
