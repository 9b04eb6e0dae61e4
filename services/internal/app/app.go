// Package app is how every service is built and run: a Spec names what the service needs
// and how to build it, and Run opens those connections (the PostgreSQL pool, the broker
// connection, the auth client) the same way for every service, serves it, and closes
// them in the right order.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/tlsconf"
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
	// Auth authenticates callers: an *authn.Client of the auth service when Open made it
	// (its health is then a readiness check), or whatever a test gives.
	Auth authn.Authenticator
}

// Open refuses to run the named service with a public development key (unless
// cfg.AllowDevKeys), then connects what needs asks for; Close releases it. A service
// started before its database or broker waits for them, retrying with backoff for
// cfg.StartupTimeout; a database that does not exist fails at once (pgutil.ErrNoDatabase).
func Open(ctx context.Context, cfg config.Config, name string, log *slog.Logger, needs Needs) (*Deps, error) {
	if err := cfg.CheckKeys(name); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if dev := cfg.DevKeysOf(name); len(dev) > 0 {
		log.Warn("running with public development keys (ATES_ALLOW_DEV_KEYS is set); never store real users or money like this", "keys", dev)
	}
	d := &Deps{}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	defer cancel()
	if needs.Postgres {
		err := retry(ctx, log, "PostgreSQL", func() (err error) {
			d.Pool, err = pgutil.Connect(ctx, cfg.DatabaseURL)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if needs.Broker {
		brokerTLS, err := tlsconf.Client(cfg.Transport.TLSCAFile)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		err = retry(ctx, log, "RabbitMQ", func() (err error) {
			d.Broker, err = broker.Dial(ctx, broker.Config{
				URL:              cfg.AMQPURLOf(name),
				AppID:            name,
				Signer:           cfg.EventKeysOf(name),
				Exchange:         cfg.Exchange,
				Logger:           log,
				ReconnectMax:     cfg.AMQP.ReconnectMax,
				Heartbeat:        cfg.AMQP.Heartbeat,
				HandshakeTimeout: cfg.AMQP.HandshakeTimeout,
				ConfirmTimeout:   cfg.AMQP.ConfirmTimeout,
				TLS:              brokerTLS,
			})
			return err
		})
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if needs.Auth {
		creds, err := tlsconf.GRPCDial(cfg.Transport.TLSCAFile)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		auth, err := authn.Dial(cfg.AuthClient.Addr, cfg.AuthClient.CacheTTL, creds)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		d.Auth = auth
	}
	return d, nil
}

// retry calls connect until it succeeds or ctx ends, with exponential backoff.
func retry(ctx context.Context, log *slog.Logger, what string, connect func() error) error {
	backoff := 200 * time.Millisecond
	for {
		err := connect()
		if err == nil || errors.Is(err, pgutil.ErrNoDatabase) {
			return err
		}
		log.WarnContext(ctx, "waiting for "+what, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for %s: %w", what, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Checks are the readiness checks of the open connections, for /readyz: PostgreSQL
// answers and its schema is not behind this binary's migrations, RabbitMQ takes
// publishes, and auth (for the APIs, which ask it about every token) answers its health
// check.
func (d *Deps) Checks() map[string]server.Check {
	checks := map[string]server.Check{}
	if d.Pool != nil {
		checks["postgres"] = d.Pool.Ping
		checks["schema"] = func(ctx context.Context) error { return pgutil.CheckSchema(ctx, d.Pool) }
	}
	if c, ok := d.Auth.(interface{ Check(context.Context) error }); ok {
		checks["auth"] = c.Check
	}
	if d.Broker != nil {
		checks["rabbitmq"] = d.Broker.Check
	}
	return checks
}

// Server builds a service's server from opts, which say what it serves (Name, Register,
// Gateways, Interceptors, Handlers…): it listens where listen says, its readiness is the
// open connections' Checks, cfg gives the shared transport and shutdown settings, and its
// /metrics include the pool's when there is a pool.
func (d *Deps) Server(cfg config.Config, listen config.Listen, log *slog.Logger, opts server.Options) (*server.Server, error) {
	opts.GRPCAddr, opts.HTTPAddr = listen.GRPC, listen.HTTP
	opts.Logger = log
	opts.Ready = d.Checks()
	opts.ShutdownTimeout = cfg.ShutdownTimeout
	opts.Pprof = cfg.Pprof
	opts.Transport = cfg.Transport
	srv, err := server.New(opts)
	if err != nil {
		return nil, err
	}
	if d.Pool != nil {
		pgutil.RegisterPoolMetrics(srv.Registry(), d.Pool)
	}
	return srv, nil
}

// HealthServer is the HTTP side of a service without an API: /healthz, /readyz over the
// open connections, and /metrics (with the pool's metrics when there is a pool).
func (d *Deps) HealthServer(name, addr string, cfg config.Config, log *slog.Logger) (*server.Server, error) {
	return d.Server(cfg, config.Listen{HTTP: addr}, log, server.Options{Name: name})
}

// Close closes the auth client and the broker connection, then the pool: consumers and publishers are done
// by the time a service calls it.
func (d *Deps) Close() {
	if c, ok := d.Auth.(io.Closer); ok {
		_ = c.Close()
	}
	if d.Broker != nil {
		_ = d.Broker.Close()
	}
	if d.Pool != nil {
		d.Pool.Close()
	}
}
