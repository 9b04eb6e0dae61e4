package mailsender

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/mailsender/internal/mailsenderdb"
)

// send mails one send_email event, once. The consumer middleware has decoded and
// validated it; a date or user id that does not parse can never succeed and goes to the
// dead-letter queue.
//
// The sent_mails row is claimed before the mail is sent, in a transaction that commits
// as soon as the SMTP server accepted the mail (before its SMTP session carries another
// mail or is closed): a
// redelivery (or a duplicate handled at the same moment, which waits on the row) finds
// the row and sends nothing, and a failed send rolls the claim back so the retry sends.
// The one window left is a crash or database failure between the server's acceptance and
// the commit, which no SMTP client can close (SMTP has no idempotency): the event is
// then retried and the mail goes out again with the same Message-ID, which mail clients
// show once. A mail is delivered at least once, never lost.
func (s *Service) send(ctx context.Context, e broker.Event[*eventsv1.SendEmail]) error {
	ev := e.Msg
	day, err := bizday.Parse(ev.GetDate())
	if err != nil {
		return broker.Permanent(fmt.Errorf("event %s: date: %w", e.ID, err))
	}
	userID, err := uuid.Parse(ev.GetUserId())
	if err != nil {
		return broker.Permanent(fmt.Errorf("event %s: user_id: %w", e.ID, err))
	}
	duplicate := false
	var done func()
	err = pgutil.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		claimed, err := mailsenderdb.New(tx).SentMailInsert(ctx, mailsenderdb.SentMailInsertParams{
			EventID: e.ID, UserID: userID, Email: ev.GetEmail(), BusinessDate: day,
		})
		if err != nil {
			return fmt.Errorf("record mail: %w", err)
		}
		if duplicate = claimed == 0; duplicate {
			return nil
		}
		done, err = s.mailer.send(ctx, e.ID.String(), ev)
		return err
	})
	if done != nil {
		done() // after the commit: the mail is recorded before its session moves on
	}
	switch {
	case err != nil:
		s.mails.WithLabelValues("failed").Inc()
		return fmt.Errorf("event %s: %w", e.ID, err)
	case duplicate:
		s.log.InfoContext(ctx, "mail already sent; dropping the duplicate", "event_id", e.ID)
		s.mails.WithLabelValues("duplicate").Inc()
		return nil
	}
	s.log.InfoContext(ctx, "summary mailed", "event_id", e.ID, "user_id", userID, "date", ev.GetDate())
	s.mails.WithLabelValues("sent").Inc()
	return nil
}
