package dailyaccounting_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/ledgertest"
	"github.com/ates/ates/services/internal/pgtest"
)

// outboxRow is an outbox row as the relay test checks it.
type outboxRow struct {
	EventID uuid.UUID
	Payload []byte
}

func outboxRows(t *testing.T, book *ledgertest.Book) []outboxRow {
	t.Helper()
	rows, err := book.Pool().Query(t.Context(), "SELECT event_id, payload FROM outbox ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		require.NoError(t, rows.Scan(&r.EventID, &r.Payload))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestRelayPublishesTheOutboxOnce(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	book := ledgertest.New(t, pool)
	ledgertest.ThreeDays(book, days)
	log := slog.New(slog.DiscardHandler)
	_, err := dailyaccounting.NewCloser(pool, time.UTC, log).CloseDay(t.Context(), day(t, days[2]))
	require.NoError(t, err)
	want := outboxRows(t, book)
	require.Len(t, want, 9)
	unsent := func() int { return book.Count("SELECT count(*) FROM outbox WHERE sent_at IS NULL") }
	_, err = pool.Exec(t.Context(), "UPDATE outbox SET created_at = now() - interval '90 seconds'")
	require.NoError(t, err)
	metrics := prometheus.NewRegistry()
	dailyaccounting.NewRelay(pool, nil, time.Hour, log).Register(metrics)
	backlog := func() (pending, lag float64) {
		mfs, err := metrics.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			switch mf.GetName() {
			case "ates_dailyaccounting_outbox_pending":
				pending = mf.GetMetric()[0].GetGauge().GetValue()
			case "ates_dailyaccounting_outbox_lag_seconds":
				lag = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return pending, lag
	}
	pending, lag := backlog()
	require.Equal(t, float64(9), pending)
	require.InDelta(t, 90, lag, 30, "the oldest unsent row waits for 90 seconds")

	exchange, queues := brokertest.Names(t, "mailsender")
	conn := brokertest.Dial(t, exchange)

	t.Run("an unreachable broker leaves every row unsent", func(t *testing.T) {
		down := brokertest.Dial(t, exchange)
		require.NoError(t, down.Close())
		n, err := dailyaccounting.NewRelay(pool, down, time.Hour, log).Flush(t.Context())
		require.ErrorIs(t, err, broker.ErrUnavailable)
		require.Zero(t, n)
		require.Equal(t, 9, unsent())
	})

	relay := dailyaccounting.NewRelay(pool, conn, time.Hour, log)
	t.Run("rows nobody consumes yet stay unsent", func(t *testing.T) {
		n, err := relay.Flush(t.Context())
		require.ErrorIs(t, err, broker.ErrUnroutable)
		require.Zero(t, n)
		require.Equal(t, 9, unsent())
	})

	require.NoError(t, conn.DeclareQueue(t.Context(), broker.QueueSpec{Name: queues[0], RoutingKeys: []string{events.SendEmail}}))
	n, err := relay.Flush(t.Context())
	require.NoError(t, err)
	require.Equal(t, 9, n)
	require.Zero(t, unsent())
	pending, lag = backlog()
	require.Zero(t, pending)
	require.Zero(t, lag, "no row waits")

	byID := map[string]*broker.Delivery{}
	for i := range want {
		d, err := conn.Get(t.Context(), queues[0])
		require.NoError(t, err)
		require.NotNil(t, d, "message %d", i)
		byID[d.EventID] = d
	}
	for i, row := range want {
		// A batch's rows go out at once (their confirms pipelined), so in no set order.
		d := byID[row.EventID.String()]
		require.NotNil(t, d, "row %d goes out once, under its event id", i)
		require.Equal(t, "events.v1.SendEmail", d.Type)
		require.Equal(t, events.SendEmail, d.RoutingKey)
		var got, sent eventsv1.SendEmail
		require.NoError(t, d.Unmarshal(&got))
		require.NoError(t, proto.Unmarshal(row.Payload, &sent))
		require.True(t, proto.Equal(&sent, &got), "message %d carries the row's payload", i)
	}

	n, err = relay.Flush(t.Context())
	require.NoError(t, err)
	require.Zero(t, n, "sent rows are not published again")
	d, err := conn.Get(t.Context(), queues[0])
	require.NoError(t, err)
	require.Nil(t, d)
}
