package mailsender

import (
	"context"
	"fmt"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/mailsender/internal/mailsenderdb"
)

// handle mails one send_email event, once. A body that does not decode or validate can
// never succeed and goes to the dead-letter queue at once.
//
// The sent_mails row is claimed before the mail is sent, in a transaction that commits
// only after the SMTP server accepted it: a redelivery (or a duplicate handled at the
// same moment, which waits on the row) finds the row and sends nothing, and a failed send
// rolls the claim back so the retry sends. The one window left is a crash or database
// failure between the server's acceptance and the commit: the event is then retried
// and the mail goes out twice (at least once, never lost); both copies carry the same
// Message-ID.
func (s *Service) handle(ctx context.Context, d broker.Delivery) error {
	var ev eventsv1.SendEmail
	if err := d.Unmarshal(&ev); err != nil {
		return broker.Permanent(err)
	}
	if err := protovalidate.Validate(&ev); err != nil {
		return broker.Permanent(fmt.Errorf("event %s: %w", d.EventID, err))
	}
	eventID, err := uuid.Parse(d.EventID)
	if err != nil {
		return broker.Permanent(fmt.Errorf("event id %q: %w", d.EventID, err))
	}
	day, err := bizday.Parse(ev.GetDate())
	if err != nil {
		return broker.Permanent(fmt.Errorf("event %s: date: %w", d.EventID, err))
	}
	userID, err := uuid.Parse(ev.GetUserId())
	if err != nil {
		return broker.Permanent(fmt.Errorf("event %s: user_id: %w", d.EventID, err))
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	duplicate := false
	err = pgutil.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		claimed, err := mailsenderdb.New(tx).SentMailInsert(ctx, mailsenderdb.SentMailInsertParams{
			EventID: eventID, UserID: userID, Email: ev.GetEmail(), BusinessDate: day,
		})
		if err != nil {
			return fmt.Errorf("record mail: %w", err)
		}
		if duplicate = claimed == 0; duplicate {
			return nil
		}
		return s.mailer.send(ctx, d.EventID, &ev)
	})
	switch {
	case err != nil:
		s.mails.WithLabelValues("failed").Inc()
		return fmt.Errorf("event %s: %w", d.EventID, err)
	case duplicate:
		s.log.InfoContext(ctx, "mail already sent; dropping the duplicate", "event_id", d.EventID)
		s.mails.WithLabelValues("duplicate").Inc()
		return nil
	}
	s.log.InfoContext(ctx, "summary mailed", "event_id", d.EventID, "user_id", userID, "date", ev.GetDate())
	s.mails.WithLabelValues("sent").Inc()
	return nil
}
