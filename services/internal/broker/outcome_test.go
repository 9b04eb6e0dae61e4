package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
)

// TestPublishWithoutConfirmFailsWithinTheDeadline hangs the broker after a send: the
// publish gives up after ConfirmTimeout with ErrOutcomeUnknown, readiness fails, and once
// the broker answers again the "failed" message turns out to have been delivered, which
// is why the outcome is unknown rather than "not sent".
func TestPublishWithoutConfirmFailsWithinTheDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy := brokertest.NewProxy(t)
	const confirmTimeout = 300 * time.Millisecond
	c := e.dial(t, func(cfg *broker.Config) {
		cfg.URL = proxy.URL()
		cfg.ConfirmTimeout = confirmTimeout
		cfg.Heartbeat = time.Minute // the connection must outlive the hang
	})
	e.declare(t, c, 0)
	publish(t, c, "before")
	require.NoError(t, c.Check(t.Context()))

	proxy.Hang()
	start := time.Now()
	id, err := c.Publish(t.Context(), testKey, &eventsv1.TaskComplete{TaskId: "lost?"})
	took := time.Since(start)
	require.ErrorIs(t, err, broker.ErrOutcomeUnknown)
	require.ErrorIs(t, err, broker.ErrUnavailable)
	require.NotErrorIs(t, err, broker.ErrNotSent)
	require.GreaterOrEqual(t, took, confirmTimeout)
	require.Less(t, took, confirmTimeout+time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	require.ErrorContains(t, c.Check(ctx), "publishes time out", "not ready while confirms time out")

	proxy.Forward()
	require.Eventually(t, func() bool { return c.Check(t.Context()) == nil }, waitFor, pollEvery,
		"ready again once the broker confirms")
	require.Equal(t, "before", taskID(t, getEventually(t, c, e.queue)))
	d := getEventually(t, c, e.queue)
	require.Equal(t, id, d.EventID, "the unconfirmed message was delivered after all")
}

// TestPublishGivesUpWhenTheCallerDoes: a caller's deadline shorter than the confirm
// timeout ends the wait with both ErrOutcomeUnknown and the context's error.
func TestPublishGivesUpWhenTheCallerDoes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy := brokertest.NewProxy(t)
	c := e.dial(t, func(cfg *broker.Config) {
		cfg.URL = proxy.URL()
		cfg.ConfirmTimeout = time.Minute
		cfg.Heartbeat = time.Minute
	})
	e.declare(t, c, 0)

	proxy.Hang()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Publish(ctx, testKey, &eventsv1.TaskComplete{TaskId: "task-1"})
	require.ErrorIs(t, err, broker.ErrOutcomeUnknown)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, c.Check(t.Context()), "a caller's own deadline is not the broker timing out")
	proxy.Forward() // for a clean Close
}

// TestCloseOfAHungConnectionIsBounded: shutting down does not wait for heartbeats to
// give up on a hung broker.
func TestCloseOfAHungConnectionIsBounded(t *testing.T) {
	t.Parallel()
	proxy := brokertest.NewProxy(t)
	c, err := broker.Dial(t.Context(), broker.Config{URL: proxy.URL(), Heartbeat: time.Minute, HandshakeTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	proxy.Hang()
	start := time.Now()
	require.Error(t, c.Close(), "the broker never confirmed the close")
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestHeartbeatsNoticeAHungBroker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy := brokertest.NewProxy(t)
	c := e.dial(t, func(cfg *broker.Config) {
		cfg.URL = proxy.URL()
		cfg.Heartbeat = time.Second
		cfg.HandshakeTimeout = 500 * time.Millisecond
	})
	require.True(t, c.Ready())

	proxy.Hang()
	start := time.Now()
	require.Eventually(t, func() bool { return !c.Ready() }, 5*time.Second, pollEvery,
		"amqp091 closes a connection that is silent for 1.5 heartbeats")
	t.Logf("hung connection noticed after %s", time.Since(start).Round(time.Millisecond))
	require.Error(t, c.Check(t.Context()))

	proxy.Forward()
	require.Eventually(t, func() bool { return c.Ready() }, waitFor, pollEvery)
}

func TestDialGivesUpOnAHungBroker(t *testing.T) {
	t.Parallel()
	proxy := brokertest.NewProxy(t)
	proxy.Hang()
	start := time.Now()
	_, err := broker.Dial(t.Context(), broker.Config{URL: proxy.URL(), HandshakeTimeout: 300 * time.Millisecond})
	require.Error(t, err)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestReconnectStartsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t, func(cfg *broker.Config) {
		cfg.ReconnectMin = time.Minute // any wait before the first attempt would show
		cfg.ReconnectMax = time.Minute
	})
	e.declare(t, c, 0)
	require.True(t, c.CutConnection())
	require.Eventually(t, func() bool { return c.Connects() == 2 && c.Ready() }, 5*time.Second, pollEvery)
	publish(t, c, "after")
}
