package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
)

// Service is a built service: it serves until ctx ends.
type Service interface {
	Serve(ctx context.Context) error
}

// Spec is how a service is built and run, the one thing a service package exports to
// the ates command: the runner opens what Needs asks for, declares Queues, calls New and
// serves the result, then closes the connections.
type Spec struct {
	// Name is the service's name: its subcommand, its log's "service" attribute and the
	// key of its settings (keys, AMQP URL).
	Name string
	// Needs are the connections New gets in its Deps.
	Needs Needs
	// Queues are the queues the service's events must reach, declared before it starts
	// so that nothing it publishes is unroutable while their consumer has never run.
	// Nil for a service that publishes nothing.
	Queues func(cfg config.Config) []broker.QueueSpec
	// New builds the service on the open connections.
	New func(cfg config.Config, deps *Deps, log *slog.Logger) (Service, error)
}

// Builder makes Spec.New of a service's own New, which returns its *Service:
// Spec{New: app.Builder(New)}.
func Builder[S Service](build func(config.Config, *Deps, *slog.Logger) (S, error)) func(config.Config, *Deps, *slog.Logger) (Service, error) {
	return func(cfg config.Config, deps *Deps, log *slog.Logger) (Service, error) { return build(cfg, deps, log) }
}

// Declare declares spec's queues on the open broker connection.
func (spec Spec) Declare(ctx context.Context, cfg config.Config, deps *Deps) error {
	if spec.Queues == nil {
		return nil
	}
	for _, q := range spec.Queues(cfg) {
		if err := deps.Broker.DeclareQueue(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", spec.Name, err)
		}
	}
	return nil
}

// Consume declares queue and consumes it until ctx ends, under the settings every
// consumer shares: cfg's per-event timeout and retry delays, and a pause while
// PostgreSQL fails. c gives the rest (Prefetch, Routes, Verify, Metrics).
func (d *Deps) Consume(ctx context.Context, cfg config.Config, queue broker.QueueSpec, c broker.ConsumerConfig) error {
	if err := d.Broker.DeclareQueue(ctx, queue); err != nil {
		return err
	}
	c.Queue = queue.Name
	c.Timeout = cfg.EventTimeout
	c.RetryMin, c.RetryMax = cfg.EventRetryMin, cfg.EventRetryMax
	if d.Pool != nil {
		c.Probe = d.Pool.Ping
	}
	return d.Broker.Consume(ctx, c)
}

// Run runs spec until ctx ends: it opens what spec needs, declares its queues, builds it
// and serves it, then closes the connections. Every service is run this way, alone
// (`ates <name>`) or beside the others (`ates all`).
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, spec Spec) error {
	log = log.With("service", spec.Name)
	deps, err := Open(ctx, cfg, spec.Name, log, spec.Needs)
	if err != nil {
		return err
	}
	defer deps.Close()
	if err := spec.Declare(ctx, cfg, deps); err != nil {
		return err
	}
	svc, err := spec.New(cfg, deps, log)
	if err != nil {
		return err
	}
	return svc.Serve(ctx)
}
