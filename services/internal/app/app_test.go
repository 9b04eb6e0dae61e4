package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgtest"
)

func TestOpen(t *testing.T) {
	t.Parallel()
	_, dbURL := pgtest.NewDB(t)
	cfg, err := config.LoadFrom(map[string]string{})
	require.NoError(t, err)
	cfg.DatabaseURL, cfg.AMQPURL = dbURL, broker.TestURL()
	log := slog.New(slog.DiscardHandler)

	t.Run("a service that would sign or verify with a public development key does not start", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"auth", "tasks", "taskhandler", "dailyaccounting", "mailsender"} {
			d, err := app.Open(context.Background(), cfg, name, log, app.Needs{Postgres: true})
			require.ErrorIs(t, err, config.ErrDevKey, name)
			require.Nil(t, d, name)
		}
		dev := cfg
		dev.AllowDevKeys = true
		d, err := app.Open(context.Background(), dev, "taskhandler", log, app.Needs{Postgres: true})
		require.NoError(t, err, "with ATES_ALLOW_DEV_KEYS a laptop runs on them")
		d.Close()
	})

	t.Run("connects what is asked for and reports it ready", func(t *testing.T) {
		t.Parallel()
		d, err := app.Open(context.Background(), cfg, "test", log, app.Needs{Postgres: true, Broker: true})
		require.NoError(t, err)
		defer d.Close()
		require.NotNil(t, d.Pool)
		require.NotNil(t, d.Broker)
		require.Nil(t, d.Auth, "not asked for")
		for name, check := range d.Checks() {
			require.NoError(t, check(context.Background()), name)
		}
	})

	t.Run("the broker is not ready while its confirms time out", func(t *testing.T) {
		t.Parallel()
		proxy := brokertest.NewProxy(t)
		slow := cfg
		slow.AMQPURL = proxy.URL()
		slow.AMQP.ConfirmTimeout = 200 * time.Millisecond
		d, err := app.Open(context.Background(), slow, "test", log, app.Needs{Broker: true})
		require.NoError(t, err)
		defer d.Close()
		check := d.Checks()["rabbitmq"]
		require.NoError(t, check(context.Background()))

		proxy.Hang()
		_, err = d.Broker.Publish(context.Background(), "nobody.listens", &eventsv1.TaskComplete{})
		require.ErrorIs(t, err, broker.ErrOutcomeUnknown)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		require.Error(t, check(ctx), "connected, but publishes time out")
		proxy.Forward()
	})

	t.Run("a database that never answers is given up on after the startup timeout", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		require.NoError(t, l.Close())
		down := cfg
		down.DatabaseURL = "postgres://postgres@" + l.Addr().String() + "/ates?connect_timeout=1"
		down.StartupTimeout = 700 * time.Millisecond
		start := time.Now()
		_, err = app.Open(context.Background(), down, "test", log, app.Needs{Postgres: true})
		require.ErrorContains(t, err, "gave up waiting for PostgreSQL")
		require.GreaterOrEqual(t, time.Since(start), 600*time.Millisecond, "it retried for the startup timeout")
	})

	t.Run("a database that comes up late is waited for", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		server, err := url.Parse(pgtest.URL())
		require.NoError(t, err)
		// A proxy appears at addr after a moment and forwards to the real server.
		go func() {
			time.Sleep(500 * time.Millisecond)
			proxy(t, addr, server.Host)
		}()
		late := cfg
		late.DatabaseURL = "postgres://postgres@" + addr + "/postgres?connect_timeout=1"
		d, err := app.Open(context.Background(), late, "test", log, app.Needs{Postgres: true})
		require.NoError(t, err)
		d.Close()
	})
}

// proxy forwards connections on addr to target until the test ends.
func proxy(t *testing.T, addr, target string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("proxy listen: %v", err)
		return
	}
	t.Cleanup(func() { _ = l.Close() })
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer u.Close()
			go func() { _, _ = io.Copy(u, c) }()
			_, _ = io.Copy(c, u)
		}()
	}
}
