package taskhandler

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
)

// TestDatabaseDownIsRetriedThenHandedBack points the handler at a database server that
// does not answer: the event is retried in process with the pauses configured, then
// returned as an ordinary error, so the broker puts it back for a delayed retry (and,
// after its last attempt, into the dead-letter queue) rather than dropping it.
func TestDatabaseDownIsRetriedThenHandedBack(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+addr+"/ates?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	validator, err := protovalidate.New()
	require.NoError(t, err)
	processed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"routing_key", "outcome"})
	h := &handler{
		store:     &store{pool: pool, loc: time.UTC, now: time.Now},
		validator: validator,
		timeout:   time.Second,
		log:       slog.New(slog.DiscardHandler),
		processed: processed,
		retries:   []time.Duration{50 * time.Millisecond, 100 * time.Millisecond},
	}
	body, err := proto.Marshal(&eventsv1.TaskComplete{TaskId: uuid.NewString(), WorkerId: uuid.NewString()})
	require.NoError(t, err)
	d := broker.Delivery{EventID: uuid.NewString(), Type: "events.v1.TaskComplete", RoutingKey: events.TaskComplete, Body: body}

	start := time.Now()
	err = h.handle(context.Background(), d)
	require.Error(t, err)
	require.False(t, broker.IsPermanent(err), "a database outage is not the message's fault: it must be retried, not dead-lettered at once")
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "both in-process retries waited")
	require.Equal(t, 1.0, testutil.ToFloat64(processed.WithLabelValues(events.TaskComplete, "failed")))
}
