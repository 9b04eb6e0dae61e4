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

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
)

// mailer sends summary mails through one SMTP server. A new connection per mail keeps
// it simple and safe for concurrent use; a day's mails are few.
type mailer struct {
	client *mail.Client
	from   string
}

// newMailer checks cfg and prepares the client; it does not connect.
func newMailer(cfg config.SMTP, timeout time.Duration) (*mailer, error) {
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
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(timeout)}
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
	return &mailer{client: client, from: cfg.From}, nil
}

// send mails ev's summary and returns once the SMTP server accepted it (its reply to
// DATA), with hangUp still to call: the caller records the mail first, so the window in
// which a crash re-sends an accepted mail is as short as SMTP allows, and a connection
// that fails after the server accepted (at QUIT) does not count as a failed send. The
// Message-ID derives from the event id, so a mail sent twice in that window is
// recognisable as one. Failures retrying cannot fix are marked broker.Permanent.
func (m *mailer) send(ctx context.Context, eventID string, ev *eventsv1.SendEmail) (hangUp func(), err error) {
	s := summaryOf(ev)
	text, html, err := render(s)
	if err != nil {
		return nil, broker.Permanent(err)
	}
	msg := mail.NewMsg()
	if err := msg.From(m.from); err != nil {
		return nil, broker.Permanent(fmt.Errorf("from %q: %w", m.from, err))
	}
	if err := msg.AddToFormat(ev.GetName(), ev.GetEmail()); err != nil {
		return nil, broker.Permanent(fmt.Errorf("to %q: %w", ev.GetEmail(), err))
	}
	msg.Subject(subject(s))
	msg.SetMessageIDWithValue(eventID + "@ates")
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, text)
	msg.AddAlternativeString(mail.TypeTextHTML, html)
	conn, err := m.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, classify(fmt.Errorf("connect to the SMTP server for %s: %w", ev.GetEmail(), err))
	}
	hangUp = func() { _ = m.client.CloseWithSMTPClient(conn) } // the mail is in; QUIT's answer does not matter
	if err := m.client.SendWithSMTPClient(conn, msg); err != nil {
		hangUp()
		return nil, classify(fmt.Errorf("send mail to %s: %w", ev.GetEmail(), err))
	}
	return hangUp, nil
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
