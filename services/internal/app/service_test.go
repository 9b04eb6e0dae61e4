package app_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/pgtest"
)

// serveFunc is a Service that runs a function.
type serveFunc func(ctx context.Context) error

func (f serveFunc) Serve(ctx context.Context) error { return f(ctx) }

// TestRunOpensDeclaresBuildsServesAndCloses: Run gives New the connections Needs asks
// for, with the Queues declared already, returns what Serve returns and closes the
// connections afterwards.
func TestRunOpensDeclaresBuildsServesAndCloses(t *testing.T) {
	t.Parallel()
	_, dbURL := pgtest.NewDB(t)
	exchange, queues := brokertest.Names(t, "published")
	cfg, err := config.LoadFrom(map[string]string{})
	require.NoError(t, err)
	cfg.DatabaseURL, cfg.AMQPURL, cfg.Exchange = dbURL, broker.TestURL(), exchange
	stopped := errors.New("stopped")
	var deps *app.Deps
	spec := app.Spec{
		Name:  "test",
		Needs: app.Needs{Postgres: true, Broker: true},
		Queues: func(config.Config) []broker.QueueSpec {
			return []broker.QueueSpec{events.TaskhandlerQueueSpec(queues[0])}
		},
		New: func(_ config.Config, d *app.Deps, _ *slog.Logger) (app.Service, error) {
			deps = d
			return serveFunc(func(ctx context.Context) error {
				_, err := d.Broker.QueueDepth(ctx, queues[0])
				require.NoError(t, err, "the queue is declared before the service starts")
				require.NoError(t, d.Pool.Ping(ctx))
				return stopped
			}), nil
		},
	}
	require.ErrorIs(t, app.Run(t.Context(), cfg, slog.New(slog.DiscardHandler), spec), stopped)
	require.Error(t, deps.Pool.Ping(context.Background()), "the pool is closed once the service stopped")
	require.Error(t, deps.Broker.Check(context.Background()), "and so is the broker connection")
}

// TestRunStopsAtAFailedBuild: an error of New is Run's, and nothing is served.
func TestRunStopsAtAFailedBuild(t *testing.T) {
	t.Parallel()
	_, dbURL := pgtest.NewDB(t)
	cfg, err := config.LoadFrom(map[string]string{})
	require.NoError(t, err)
	cfg.DatabaseURL = dbURL
	broken := errors.New("broken")
	spec := app.Spec{
		Name:  "test",
		Needs: app.Needs{Postgres: true},
		New: func(config.Config, *app.Deps, *slog.Logger) (app.Service, error) {
			return nil, broken
		},
	}
	require.ErrorIs(t, app.Run(t.Context(), cfg, slog.New(slog.DiscardHandler), spec), broken)
}
