package tasks

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/events"
)

// TestPublishSaysWhetherTheChangeMayHappen walks a broker through the states a write call
// can meet and checks what the caller is told: "nothing was changed, try again" only when
// the event never reached the broker, "the outcome is unknown" with the retry advice
// otherwise, DeadlineExceeded when the caller's own deadline ended the wait.
func TestPublishSaysWhetherTheChangeMayHappen(t *testing.T) {
	t.Parallel()
	exchange, _ := brokertest.Names(t)
	proxy := brokertest.NewProxy(t)
	b := brokertest.DialWith(t, exchange, func(cfg *broker.Config) {
		cfg.URL = proxy.URL()
		cfg.ConfirmTimeout = 300 * time.Millisecond
		cfg.Heartbeat = time.Minute // hung connections stay up
		cfg.ReconnectMin = time.Minute
		cfg.ReconnectMax = time.Minute
	})
	log := slog.New(slog.DiscardHandler)
	withID := retryKey{given: true, requestID: uuid.New()}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()

	for _, tc := range []struct {
		name  string
		setup func()
		ctx   func() (context.Context, context.CancelFunc)
		key   retryKey
		code  codes.Code
		msg   string
	}{
		{
			name: "a deadline that passed before the send: nothing changed",
			ctx:  func() (context.Context, context.CancelFunc) { return expired, func() {} },
			key:  withID, code: codes.DeadlineExceeded, msg: msgNotSentDeadline,
		},
		{
			name: "no queue for the event: nothing changed",
			key:  withID, code: codes.Unavailable, msg: msgNotSent,
		},
		{
			name:  "a hung broker: the outcome is unknown, retry with the same request_id",
			setup: proxy.Hang,
			key:   withID, code: codes.Unavailable, msg: msgUnknown + adviceRetry,
		},
		{
			name: "a hung broker and no request_id: the outcome is unknown, check first",
			key:  retryKey{}, code: codes.Unavailable, msg: msgUnknown + adviceNoID,
		},
		{
			name: "a hung broker and a caller's deadline: DeadlineExceeded, the outcome is unknown",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			},
			key: withID, code: codes.DeadlineExceeded, msg: msgUnknownDeadline + adviceRetry,
		},
		{
			name: "a broker that is down: nothing changed",
			setup: func() {
				proxy.Refuse()
				require.Eventually(t, func() bool { return !b.Ready() }, 5*time.Second, 10*time.Millisecond)
			},
			key: withID, code: codes.Unavailable, msg: msgNotSent,
		},
	} {
		// In order: each case leaves the broker as the next one expects it.
		if tc.setup != nil {
			tc.setup()
		}
		ctx, cancel := context.Background(), func() {}
		if tc.ctx != nil {
			ctx, cancel = tc.ctx()
		}
		err := publish(ctx, b, log, tc.key, events.TaskComplete, &eventsv1.TaskComplete{TaskId: uuid.NewString(), WorkerId: uuid.NewString()}, uuid.New())
		cancel()
		st, ok := status.FromError(err)
		require.True(t, ok, "%s: %v", tc.name, err)
		require.Equal(t, tc.code, st.Code(), "%s: %v", tc.name, err)
		require.Equal(t, tc.msg, st.Message(), tc.name)
	}
}
