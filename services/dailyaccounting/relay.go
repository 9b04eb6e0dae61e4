package dailyaccounting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/ates/ates/services/dailyaccounting/internal/dailyaccountingdb"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/pgutil"
)

// errNotTried marks the rows of a batch left unpublished when the relay was stopped.
var errNotTried = errors.New("not published: the relay is stopping")

const (
	// relayBatch is how many outbox rows one transaction publishes.
	relayBatch = 1000
	// relayInFlight is how many of them at most await the broker's confirm at once.
	relayInFlight = 256
	// publishTimeout bounds the wait for one publisher confirm.
	publishTimeout = 10 * time.Second
	// maxRelayBackoff caps the wait after failures (broker down, no queue bound yet):
	// short, so mail goes out within seconds of the broker's return.
	maxRelayBackoff = 5 * time.Second
)

// Relay publishes the outbox: unsent rows, oldest batch first, each under its own event
// id and with the broker's confirm, then marks them sent. A row that cannot be published
// stays unsent until a later attempt succeeds, and the relay stops at the batch it is
// in: nothing is lost or skipped. A crash between the confirm and the commit publishes a row again, with the
// same event id, which consumers drop as a duplicate.
type Relay struct {
	pool     *pgxpool.Pool
	conn     *broker.Conn
	interval time.Duration
	wake     chan struct{}
	log      *slog.Logger
}

// NewRelay returns a relay that polls the outbox on pool every interval and publishes
// through conn.
func NewRelay(pool *pgxpool.Pool, conn *broker.Conn, interval time.Duration, log *slog.Logger) *Relay {
	return &Relay{pool: pool, conn: conn, interval: interval, wake: make(chan struct{}, 1), log: log}
}

// Register exports the outbox backlog on reg, read from the database at each scrape:
// ates_dailyaccounting_outbox_pending (rows not yet published) and
// ates_dailyaccounting_outbox_lag_seconds (how long the oldest of them has waited; 0
// when none waits). A lag that keeps growing means the relay cannot publish.
func (r *Relay) Register(reg prometheus.Registerer) {
	reg.MustRegister(&outboxBacklog{pool: r.pool,
		pending: prometheus.NewDesc("ates_dailyaccounting_outbox_pending",
			"Outbox rows not yet published to the broker.", nil, nil),
		lag: prometheus.NewDesc("ates_dailyaccounting_outbox_lag_seconds",
			"Age of the oldest outbox row not yet published, in seconds (0 when none waits).", nil, nil),
	})
}

// outboxBacklog reads the outbox backlog when scraped.
type outboxBacklog struct {
	pool         *pgxpool.Pool
	pending, lag *prometheus.Desc
}

func (o *outboxBacklog) Describe(ch chan<- *prometheus.Desc) { ch <- o.pending; ch <- o.lag }

func (o *outboxBacklog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, err := dailyaccountingdb.New(o.pool).OutboxBacklog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(o.pending, err)
		ch <- prometheus.NewInvalidMetric(o.lag, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(o.pending, prometheus.GaugeValue, float64(b.Pending))
	ch <- prometheus.MustNewConstMetric(o.lag, prometheus.GaugeValue, b.OldestSeconds)
}

// Wake makes a running relay look at the outbox now instead of at its next poll.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// Run relays until ctx ends, backing off while publishing fails.
func (r *Relay) Run(ctx context.Context) error {
	failures := 0
	for {
		wait := r.interval
		if n, err := r.Flush(ctx); err != nil {
			failures++
			wait = min(r.interval<<min(failures, 10), maxRelayBackoff)
			r.log.WarnContext(ctx, "outbox relay failed; retrying", "published", n, "retry_in", wait, "err", err)
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// Flush publishes every unsent row and returns how many it published. It stops after
// the first batch with a row it cannot publish, or when ctx ends.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, more, err := r.flushBatch(ctx)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
	return total, nil
}

// flushBatch publishes one batch in a transaction that locks its rows (another replica's
// relay skips them) and marks what was confirmed. more says a full batch went out.
//
// The batch's rows are published at once, up to relayInFlight awaiting their confirms
// (the broker connection pipelines them), rather than one confirm after another: a
// confirm of a persistent message waits for the broker's disk, and one by one that
// capped the relay at about a hundred rows a second. The price is order within a
// batch, which no consumer of the outbox needs (mailsender handles many mails at once
// anyway). Every confirmed row is marked sent; a row that failed stays unsent.
func (r *Relay) flushBatch(ctx context.Context) (n int, more bool, err error) {
	// The transaction outlives a shutdown's cancel, so rows confirmed by the broker are
	// marked sent; ctx only stops the loop between rows.
	txCtx := context.WithoutCancel(ctx)
	var pubErr error
	err = pgutil.InTx(txCtx, r.pool, func(tx pgx.Tx) error {
		q := dailyaccountingdb.New(tx)
		rows, err := q.OutboxListUnsent(txCtx, relayBatch)
		if err != nil {
			return fmt.Errorf("list unsent outbox rows: %w", err)
		}
		errs := make([]error, len(rows))
		for i := range errs {
			errs[i] = errNotTried
		}
		slots := make(chan struct{}, relayInFlight)
		var wg sync.WaitGroup
		for i, row := range rows {
			if ctx.Err() != nil {
				break
			}
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				errs[i] = r.publish(txCtx, row)
			})
		}
		wg.Wait()
		sent := make([]int64, 0, len(rows))
		for i, row := range rows {
			switch {
			case errs[i] == nil:
				sent = append(sent, row.ID)
			case pubErr == nil:
				pubErr = errs[i]
			}
		}
		if errors.Is(pubErr, errNotTried) {
			pubErr = ctx.Err()
		}
		n, more = len(sent), len(rows) == relayBatch && pubErr == nil
		if len(sent) == 0 {
			return nil
		}
		if err := q.OutboxMarkSent(txCtx, sent); err != nil {
			return fmt.Errorf("mark outbox rows sent: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, pubErr
}

// publish sends one row's payload with the row's event id and waits for the confirm.
func (r *Relay) publish(ctx context.Context, row dailyaccountingdb.OutboxListUnsentRow) error {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(row.MessageType))
	if err != nil {
		return fmt.Errorf("outbox row %d: message type %q: %w", row.ID, row.MessageType, err)
	}
	msg := mt.New().Interface()
	if err := proto.Unmarshal(row.Payload, msg); err != nil {
		return fmt.Errorf("outbox row %d: decode %s: %w", row.ID, row.MessageType, err)
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := r.conn.Publish(ctx, row.RoutingKey, msg, broker.WithEventID(row.EventID.String())); err != nil {
		if errors.Is(err, broker.ErrUnroutable) {
			return fmt.Errorf("outbox row %d: no queue is bound for %s yet (is its consumer deployed?): %w", row.ID, row.RoutingKey, err)
		}
		return fmt.Errorf("outbox row %d: %w", row.ID, err)
	}
	return nil
}
