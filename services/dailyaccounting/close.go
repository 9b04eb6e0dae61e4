package dailyaccounting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/dailyaccounting/internal/dailyaccountingdb"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/pgutil"
)

// ErrFutureDay is returned for a day after today in the business time zone: it has not
// begun. Today itself may be closed early; activity after the close lands on tomorrow.
var ErrFutureDay = errors.New("the day has not begun yet")

// eventNamespace is the UUID v5 namespace of the event ids the close derives, so that a
// (kind, day, worker) always has the same id.
var eventNamespace = uuid.MustParse("6d96ff18-602f-4c88-bcc9-7e27f0065536")

// sendEmailType is the message_type of the send_email outbox rows.
var sendEmailType = string((&eventsv1.SendEmail{}).ProtoReflect().Descriptor().FullName())

// DayClosed is what closing one day wrote.
type DayClosed struct {
	// Day is the business day closed.
	Day time.Time
	// Workers is how many balance rows (and summary mails) the close wrote.
	Workers int
	// Payouts is how many workers were paid; Paid is the sum paid out.
	Payouts int
	Paid    int64
}

// Closer closes business days: balance rows, payout rows, summary mails in the outbox.
type Closer struct {
	pool     *pgxpool.Pool
	loc      *time.Location
	now      func() time.Time
	log      *slog.Logger
	onClosed func() // after a commit that closed days; wakes the outbox relay

	seconds    prometheus.Histogram // nil until Register
	lastClosed prometheus.Gauge
}

// Register exports the closer's metrics on reg: ates_dailyaccounting_close_seconds (how
// long each CloseDay call that closed days took, transaction included) and
// ates_dailyaccounting_last_closed_day (the last business day this process closed, as
// the Unix time of its midnight UTC, so that time() minus it is the days' backlog).
func (c *Closer) Register(reg prometheus.Registerer) {
	c.seconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ates_dailyaccounting_close_seconds",
		Help:    "Duration of the daily close calls that closed at least one day, in seconds.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
	})
	c.lastClosed = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ates_dailyaccounting_last_closed_day",
		Help: "The last business day this process closed, as the Unix time of its midnight UTC (0 before the first close).",
	})
	reg.MustRegister(c.seconds, c.lastClosed)
}

// NewCloser returns a closer on pool whose business days are dates in loc.
func NewCloser(pool *pgxpool.Pool, loc *time.Location, log *slog.Logger) *Closer {
	return &Closer{pool: pool, loc: loc, now: time.Now, log: log}
}

// CloseDay closes day, closing every earlier open day first, all in one transaction
// under an advisory lock, so that replicas running at once never both close a day. A
// day already closed is left alone: CloseDay then writes nothing and returns no days.
// Days whose business date has not ended yet are refused with ErrDayNotOver.
func (c *Closer) CloseDay(ctx context.Context, day time.Time) ([]DayClosed, error) {
	day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	if today := bizday.Of(c.now(), c.loc); day.After(today) {
		return nil, fmt.Errorf("close day %s: %w (today is %s in %s)", bizday.Format(day), ErrFutureDay, bizday.Format(today), c.loc)
	}
	start := time.Now()
	var closed []DayClosed
	err := pgutil.InTx(ctx, c.pool, func(tx pgx.Tx) error {
		q := dailyaccountingdb.New(tx)
		if err := q.CloseLock(ctx); err != nil {
			return fmt.Errorf("take the close lock: %w", err)
		}
		first, err := firstOpenDay(ctx, q, day)
		if err != nil {
			return err
		}
		for d := first; !d.After(day); d = bizday.Next(d) {
			dc, err := closeOne(ctx, q, d)
			if err != nil {
				return fmt.Errorf("close %s: %w", bizday.Format(d), err)
			}
			closed = append(closed, dc)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("close day %s: %w", bizday.Format(day), err)
	}
	for _, dc := range closed {
		c.log.InfoContext(ctx, "day closed", "date", bizday.Format(dc.Day), "workers", dc.Workers, "payouts", dc.Payouts, "paid", dc.Paid)
	}
	if len(closed) > 0 && c.seconds != nil {
		c.seconds.Observe(time.Since(start).Seconds())
		c.lastClosed.Set(float64(closed[len(closed)-1].Day.Unix()))
	}
	if len(closed) > 0 && c.onClosed != nil {
		c.onClosed()
	}
	return closed, nil
}

// firstOpenDay is where closing up to day starts: the day after the last closed one or,
// if none was ever closed, the first day with activity (day itself if that is later).
func firstOpenDay(ctx context.Context, q *dailyaccountingdb.Queries, day time.Time) (time.Time, error) {
	last, err := q.ClosedDayLast(ctx)
	switch {
	case err != nil:
		return time.Time{}, fmt.Errorf("find the last closed day: %w", err)
	case !last.IsZero():
		return bizday.Next(last), nil
	}
	first, err := q.LogFirstDay(ctx)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return day, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("find the first day with activity: %w", err)
	}
	if first.After(day) {
		return day, nil
	}
	return first, nil
}

// closeOne closes one day whose previous day is closed (or has nothing to carry): the
// balance rows in one statement, then the payouts and the mails in one COPY each.
func closeOne(ctx context.Context, q *dailyaccountingdb.Queries, day time.Time) (DayClosed, error) {
	rows, err := q.BalanceCloseDay(ctx, dailyaccountingdb.BalanceCloseDayParams{Day: day, PrevDay: bizday.Prev(day)})
	if err != nil {
		return DayClosed{}, fmt.Errorf("write balances: %w", err)
	}
	dc := DayClosed{Day: day, Workers: len(rows)}
	var payouts []dailyaccountingdb.LogInsertPayoutsParams
	mails := make([]dailyaccountingdb.OutboxInsertParams, 0, len(rows))
	for _, r := range rows {
		if r.Payout > 0 {
			payouts = append(payouts, dailyaccountingdb.LogInsertPayoutsParams{
				UserID:       r.UserID,
				Kind:         dailyaccountingdb.AuditKindPayout,
				Amount:       -r.Payout,
				BusinessDate: day,
				EventID:      eventID(string(dailyaccountingdb.AuditKindPayout), day, r.UserID),
			})
			dc.Payouts++
			dc.Paid += r.Payout
		}
		payload, err := proto.Marshal(&eventsv1.SendEmail{
			UserId:  r.UserID.String(),
			Email:   r.Email,
			Name:    r.Name,
			Date:    bizday.Format(day),
			Opening: r.Opening,
			Rewards: r.Rewards,
			Fees:    r.Fees,
			Closing: r.Closing,
			Payout:  r.Payout,
			Carry:   r.Carry,
		})
		if err != nil {
			return DayClosed{}, fmt.Errorf("encode the mail of %s: %w", r.UserID, err)
		}
		mails = append(mails, dailyaccountingdb.OutboxInsertParams{
			EventID:     eventID("send_email", day, r.UserID),
			RoutingKey:  events.SendEmail,
			MessageType: sendEmailType,
			Payload:     payload,
		})
	}
	if len(payouts) > 0 {
		if _, err := q.LogInsertPayouts(ctx, payouts); err != nil {
			return DayClosed{}, fmt.Errorf("write payouts: %w", err)
		}
	}
	if len(mails) > 0 {
		if _, err := q.OutboxInsert(ctx, mails); err != nil {
			return DayClosed{}, fmt.Errorf("write mails to the outbox: %w", err)
		}
	}
	if err := q.ClosedDayInsert(ctx, dailyaccountingdb.ClosedDayInsertParams{BusinessDate: day, Workers: int32(len(rows))}); err != nil { //nolint:gosec // G115: one row per worker; never near 2^31
		return DayClosed{}, fmt.Errorf("mark closed: %w", err)
	}
	return dc, nil
}

// eventID derives the id of the kind event of a worker's closed day; the same inputs
// always give the same id, so nothing can be written or mailed twice for them.
func eventID(kind string, day time.Time, userID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(eventNamespace, []byte(kind+"/"+bizday.Format(day)+"/"+userID.String()))
}
