// Package taskhandler applies the task events (task_create, task_complete, task_assign,
// tasks_reassign) to the tasks table and the audit log. Every event is applied together
// with its processed-events row, in a transaction that applies a batch of events, and
// acknowledged after that commit, so a redelivered event changes nothing.
package taskhandler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/server"
)

// Service is a built taskhandler: its health server and its consumer.
type Service struct {
	Server    *server.Server
	deps      *app.Deps
	queue     string
	prefetch  int
	batchSize int
	appliers  int
	timeout   time.Duration
	retry     [2]time.Duration
	trusted   *broker.Keyring // the tasks API's keys: only its events are applied
	handler   *handler
}

// New builds taskhandler on deps; queue names its durable queue (events.TaskhandlerQueue
// in production, a private one in tests).
func New(cfg config.Config, listen config.Listen, deps *app.Deps, queue string, log *slog.Logger) (*Service, error) {
	srv, err := deps.HealthServer("taskhandler", listen.HTTP, cfg, log)
	if err != nil {
		return nil, err
	}
	processed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_taskhandler_events_total",
		Help: "Task events taskhandler settled, by routing key and outcome: applied, rejected (a business reason, recorded for the caller) or duplicate (applied before). Failures are in ates_consumer_events_total.",
	}, []string{"routing_key", "outcome"})
	tasks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_taskhandler_tasks_total",
		Help: "Task changes applied, by action: created, assigned (by task.assign or task.reassign, one per task moved) or completed. Rejected and duplicate events count nothing.",
	}, []string{"action"})
	srv.Registry().MustRegister(processed, tasks)
	return &Service{
		Server:    srv,
		deps:      deps,
		queue:     queue,
		prefetch:  cfg.TaskhandlerPrefetch,
		batchSize: cfg.TaskhandlerBatch,
		appliers:  cfg.TaskhandlerAppliers,
		timeout:   cfg.EventTimeout,
		retry:     [2]time.Duration{cfg.EventRetryMin, cfg.EventRetryMax},
		trusted:   cfg.TrustedKeysOf(events.Taskhandler),
		handler: &handler{
			store:     &store{pool: deps.Pool, loc: cfg.BusinessTZ, now: time.Now, workers: &workerList{ttl: time.Second}},
			log:       log,
			processed: processed,
			tasks:     tasks,
		},
	}, nil
}

// Declare declares taskhandler's queue, bound to the four task events.
func (s *Service) Declare(ctx context.Context) error {
	if err := s.deps.Broker.DeclareQueue(ctx, events.TaskhandlerQueueSpec(s.queue)); err != nil {
		return fmt.Errorf("taskhandler: declare queue %s: %w", s.queue, err)
	}
	return nil
}

// Consume declares the queue and applies events until ctx ends, finishing the events in
// hand before it returns. The events the consumer's handlers take at once (up to the
// prefetch) are applied in batches of up to the batch size per transaction.
func (s *Service) Consume(ctx context.Context) error {
	if err := s.Declare(ctx); err != nil {
		return err
	}
	st := s.handler.store
	if st.batch == nil {
		st.batch = newBatcher(st, s.batchSize, s.timeout, s.Server.Registry())
	}
	stop := make(chan struct{})
	var appliers sync.WaitGroup
	for range s.appliers {
		appliers.Go(func() { st.batch.run(stop) })
	}
	// The batcher outlives the consumer, which waits for its handlers, which wait for
	// the batcher.
	defer func() {
		close(stop)
		appliers.Wait()
	}()
	return s.deps.Broker.Consume(ctx, broker.ConsumerConfig{
		Queue:    s.queue,
		Prefetch: s.prefetch,
		Timeout:  s.timeout,
		Routes:   s.handler.routes(),
		Verify:   s.trusted,
		Probe:    s.deps.Pool.Ping,
		RetryMin: s.retry[0],
		RetryMax: s.retry[1],
		Metrics:  s.Server.Registry(),
	})
}

// Run serves taskhandler until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	log = log.With("service", "taskhandler")
	deps, err := app.Open(ctx, cfg, "taskhandler", log, app.Needs{Postgres: true, Broker: true})
	if err != nil {
		return err
	}
	defer deps.Close()
	svc, err := New(cfg, cfg.TaskhandlerListen, deps, events.TaskhandlerQueue, log)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Server.Serve(ctx) })
	g.Go(func() error { return svc.Consume(ctx) })
	return g.Wait()
}
