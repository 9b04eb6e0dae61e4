// Package accounting is the accounting API: a user's balance for a business day with
// that day's audit log, and the company's earnings for a day. It only reads; balances
// are written by dailyaccounting and the audit log by taskhandler.
package accounting

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/server"
)

// New builds the accounting servers on pool, authenticating callers with auth and
// listening where listen says.
func New(cfg config.Config, listen config.Listen, pool *pgxpool.Pool, auth authn.Authenticator, log *slog.Logger) (*server.Server, error) {
	impl := &Server{store: newStore(pool), loc: cfg.BusinessTZ, now: time.Now, log: log}
	srv, err := server.New(server.Options{
		Name:         "accounting",
		GRPCAddr:     listen.GRPC,
		HTTPAddr:     listen.HTTP,
		Logger:       log,
		Interceptors: []grpc.UnaryServerInterceptor{authn.UnaryServerInterceptor(auth)},
		Register:     func(g *grpc.Server) { accountingv1.RegisterAccountingServiceServer(g, impl) },
		Gateways:     []server.GatewayFunc{accountingv1.RegisterAccountingServiceHandlerFromEndpoint},
		Ready:        map[string]server.Check{"postgres": pool.Ping},

		ShutdownTimeout: cfg.ShutdownTimeout,
		Pprof:           cfg.Pprof,
		Transport:       cfg.Transport,
	})
	if err != nil {
		return nil, err
	}
	pgutil.RegisterPoolMetrics(srv.Registry(), pool)
	return srv, nil
}

// Run serves accounting until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	log = log.With("service", "accounting")
	deps, err := app.Open(ctx, cfg, "accounting", log, app.Needs{Postgres: true, Auth: true})
	if err != nil {
		return err
	}
	defer deps.Close()
	srv, err := New(cfg, cfg.AccountingListen, deps.Pool, deps.Auth, log)
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}
