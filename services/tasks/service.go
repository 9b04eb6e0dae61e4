// Package tasks is the tasks API: it creates, assigns and completes tasks by publishing
// events that taskhandler applies, and shows tasks to those who may see them.
package tasks

import (
	"context"
	"fmt"
	"log/slog"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/ratelimit"
	"github.com/ates/ates/services/internal/server"
)

// Service is a built tasks API: its server and the listener that wakes waiting calls.
type Service struct {
	Server *server.Server
	waiter *waiter
	gate   *gate
}

// New builds the tasks API on deps, authenticating through auth.
func New(cfg config.Config, listen config.Listen, deps *app.Deps, auth authn.Authenticator, log *slog.Logger) (*Service, error) {
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
	srv, err := server.New(server.Options{
		Name:            "tasks",
		GRPCAddr:        listen.GRPC,
		HTTPAddr:        listen.HTTP,
		Logger:          log,
		Interceptors:    []grpc.UnaryServerInterceptor{authn.UnaryServerInterceptor(auth)},
		Register:        func(g *grpc.Server) { tasksv1.RegisterTaskServiceServer(g, impl) },
		Gateways:        []server.GatewayFunc{tasksv1.RegisterTaskServiceHandlerFromEndpoint},
		Ready:           deps.Checks(),
		ShutdownTimeout: cfg.ShutdownTimeout,
		Pprof:           cfg.Pprof,
		Transport:       cfg.Transport,
	})
	if err != nil {
		return nil, err
	}
	impl.gate = newGate(deps.Broker, events.TaskhandlerQueue, cfg.TasksMaxBacklog, cfg.TasksBacklogWait, srv.Registry())
	impl.quotas = newQuotas(cfg.Limits, ratelimit.NewMetrics(srv.Registry()))
	pgutil.RegisterPoolMetrics(srv.Registry(), deps.Pool)
	return &Service{Server: srv, waiter: w, gate: impl.gate}, nil
}

// WatchQueue names the queue whose depth admits writes (events.TaskhandlerQueue unless
// changed, as tests do); call it before Serve.
func (s *Service) WatchQueue(name string) { s.gate.queue = name }

// Serve serves until ctx ends.
func (s *Service) Serve(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Server.Serve(ctx) })
	g.Go(func() error { return s.waiter.listen(ctx) })
	g.Go(func() error { return s.gate.watch(ctx) })
	return g.Wait()
}

// Run serves the tasks API until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	log = log.With("service", "tasks")
	deps, err := app.Open(ctx, cfg, "tasks", log, app.Needs{Postgres: true, Broker: true, Auth: true})
	if err != nil {
		return err
	}
	defer deps.Close()
	// Declaring taskhandler's queue here too means no event is unroutable (and refused)
	// because the API happened to start before taskhandler ever ran.
	if err := deps.Broker.DeclareQueue(ctx, events.TaskhandlerQueueSpec(events.TaskhandlerQueue)); err != nil {
		return fmt.Errorf("tasks: declare queue: %w", err)
	}
	svc, err := New(cfg, cfg.TasksListen, deps, deps.Auth, log)
	if err != nil {
		return err
	}
	return svc.Serve(ctx)
}
