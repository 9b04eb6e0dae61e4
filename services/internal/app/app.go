// Package app opens what a service runs on (the PostgreSQL pool, the broker connection)
// the same way for every service, and closes it in the right order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/server"
)

// Needs says which connections a service uses.
type Needs struct {
	Postgres bool
	Broker   bool
	// Auth is a client of the auth service, for APIs that authenticate every call.
	Auth bool
}

// Deps are a service's open connections.
type Deps struct {
	Pool   *pgxpool.Pool
	Broker *broker.Conn
	Auth   *authn.Client
}

// Open connects what needs asks for; Close releases it.
func Open(ctx context.Context, cfg config.Config, name string, log *slog.Logger, needs Needs) (*Deps, error) {
	d := &Deps{}
	if needs.Postgres {
		pool, err := pgutil.Connect(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		d.Pool = pool
	}
	if needs.Broker {
		conn, err := broker.Dial(ctx, broker.Config{URL: cfg.AMQPURL, AppID: name, Exchange: cfg.Exchange, Logger: log})
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		d.Broker = conn
	}
	if needs.Auth {
		auth, err := authn.Dial(cfg.AuthClient.Addr, cfg.AuthClient.CacheTTL)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		d.Auth = auth
	}
	return d, nil
}

// Checks are the readiness checks of the open connections, for /readyz.
func (d *Deps) Checks() map[string]server.Check {
	checks := map[string]server.Check{}
	if d.Pool != nil {
		checks["postgres"] = d.Pool.Ping
	}
	if d.Broker != nil {
		checks["rabbitmq"] = func(context.Context) error {
			if !d.Broker.Ready() {
				return errors.New("not connected")
			}
			return nil
		}
	}
	return checks
}

// HealthServer is the HTTP side of a service without an API: /healthz, /readyz over the
// open connections, and /metrics.
func (d *Deps) HealthServer(name, addr string, cfg config.Config, log *slog.Logger) (*server.Server, error) {
	return server.New(server.Options{
		Name:            name,
		HTTPAddr:        addr,
		Logger:          log,
		Ready:           d.Checks(),
		ShutdownTimeout: cfg.ShutdownTimeout,
	})
}

// Close closes the auth client and the broker connection, then the pool: consumers and publishers are done
// by the time a service calls it.
func (d *Deps) Close() {
	if d.Auth != nil {
		_ = d.Auth.Close()
	}
	if d.Broker != nil {
		_ = d.Broker.Close()
	}
	if d.Pool != nil {
		d.Pool.Close()
	}
}
