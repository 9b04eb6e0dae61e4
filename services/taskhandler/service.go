// Package taskhandler applies the task events (task_create, task_complete, task_assign,
// tasks_reassign) to the tasks table and the audit log. Every event is applied together
// with its processed-events row, in a transaction that applies a batch of events, and
// acknowledged after that commit, so a redelivered event changes nothing.
package taskhandler

import (
	"context"
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

// Spec is how ates builds and runs taskhandler.
var Spec = app.Spec{
	Name:  "taskhandler",
	Needs: app.Needs{Postgres: true, Broker: true},
	New:   app.Builder(New),
}

// Service is a built taskhandler: its health server and its consumer.
type Service struct {
	*server.Server
	cfg     config.Config
	deps    *app.Deps
	handler *handler
}

// New builds taskhandler on deps: it consumes cfg.Queues.Taskhandler and serves HTTP on
// cfg.TaskhandlerListen.
func New(cfg config.Config, deps *app.Deps, log *slog.Logger) (*Service, error) {
	srv, err := deps.HealthServer("taskhandler", cfg.TaskhandlerListen.HTTP, cfg, log)
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
		Server: srv,
		cfg:    cfg,
		deps:   deps,
		handler: &handler{
			store:     &store{pool: deps.Pool, loc: cfg.BusinessTZ, now: time.Now, workers: &workerList{ttl: time.Second}},
			log:       log,
			processed: processed,
			tasks:     tasks,
		},
	}, nil
}

// Serve serves HTTP and consumes until ctx ends.
func (s *Service) Serve(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Server.Serve(ctx) })
	g.Go(func() error { return s.Consume(ctx) })
	return g.Wait()
}

// Consume declares the queue and applies events until ctx ends, finishing the events in
// hand before it returns. The events the consumer's handlers take at once (up to the
// prefetch) are applied in batches of up to the batch size per transaction.
func (s *Service) Consume(ctx context.Context) error {
	st := s.handler.store
	if st.batch == nil {
		st.batch = newBatcher(st, s.cfg.TaskhandlerBatch, s.cfg.EventTimeout, s.Registry())
	}
	stop := make(chan struct{})
	var appliers sync.WaitGroup
	for range s.cfg.TaskhandlerAppliers {
		appliers.Go(func() { st.batch.run(stop) })
	}
	// The batcher outlives the consumer, which waits for its handlers, which wait for
	// the batcher.
	defer func() {
		close(stop)
		appliers.Wait()
	}()
	return s.deps.Consume(ctx, s.cfg, events.TaskhandlerQueueSpec(s.cfg.Queues.Taskhandler), broker.ConsumerConfig{
		Prefetch: s.cfg.TaskhandlerPrefetch,
		Routes:   s.handler.routes(),
		Verify:   s.cfg.TrustedKeysOf(events.Taskhandler), // only the tasks API's events are applied
		Metrics:  s.Registry(),
	})
}
