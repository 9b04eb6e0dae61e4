// Package tasks is the tasks API: it creates, assigns and completes tasks by publishing
// events that taskhandler applies, and shows tasks to those who may see them.
package tasks

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/ratelimit"
	"github.com/ates/ates/services/internal/server"
)

// Spec is how ates builds and runs the tasks API. Taskhandler's queue is declared before
// it starts, so that no event is unroutable (and refused) because the API happened to
// start before taskhandler ever ran.
var Spec = app.Spec{
	Name:  "tasks",
	Needs: app.Needs{Postgres: true, Broker: true, Auth: true},
	Queues: func(cfg config.Config) []broker.QueueSpec {
		return []broker.QueueSpec{events.TaskhandlerQueueSpec(cfg.Queues.Taskhandler)}
	},
	New: app.Builder(New),
}

// Service is a built tasks API: its server, the listener that wakes waiting calls and
// the watch on taskhandler's backlog.
type Service struct {
	*server.Server
	waiter *waiter
	gate   *gate
}

// New builds the tasks API on deps, listening on cfg.TasksListen; writes wait while
// taskhandler's queue (cfg.Queues.Taskhandler) is backed up.
func New(cfg config.Config, deps *app.Deps, log *slog.Logger) (*Service, error) {
	st := newStore(deps.Pool)
	w := newWaiter(deps.Pool, st, log)
	impl := &Server{
		store:       st,
		broker:      deps.Broker,
		waiter:      w,
		log:         log,
		waitTimeout: cfg.WaitTimeout,
		batchSize:   cfg.ReassignBatchSize,
	}
	srv, err := deps.Server(cfg, cfg.TasksListen, log, server.Options{
		Name:         "tasks",
		Interceptors: []grpc.UnaryServerInterceptor{authn.UnaryServerInterceptor(deps.Auth)},
		Register:     func(g *grpc.Server) { tasksv1.RegisterTaskServiceServer(g, impl) },
		Gateways:     []server.GatewayFunc{tasksv1.RegisterTaskServiceHandlerFromEndpoint},
	})
	if err != nil {
		return nil, err
	}
	impl.gate = newGate(deps.Broker, cfg.Queues.Taskhandler, cfg.TasksMaxBacklog, cfg.TasksBacklogWait, srv.Registry())
	impl.quotas = newQuotas(cfg.Limits, ratelimit.NewMetrics(srv.Registry()))
	return &Service{Server: srv, waiter: w, gate: impl.gate}, nil
}

// Serve serves until ctx ends.
func (s *Service) Serve(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Server.Serve(ctx) })
	g.Go(func() error { return s.waiter.listen(ctx) })
	g.Go(func() error { return s.gate.watch(ctx) })
	return g.Wait()
}
