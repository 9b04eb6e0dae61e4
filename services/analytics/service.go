// Package analytics is the analytics API, for admins: how many workers are below zero on
// a day, what the company earned over a range of days, and the most rewarding task
// completed in a range. It only reads. Its HTTP port also serves the web dashboard
// (package web) at "/".
package analytics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	analyticsv1 "github.com/ates/ates/gen/analytics/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/tlsconf"
	"github.com/ates/ates/services/web"
)

// New builds the analytics servers on deps, authenticating callers with auth.
func New(cfg config.Config, listen config.Listen, deps *app.Deps, auth authn.Authenticator, log *slog.Logger) (*server.Server, error) {
	impl := &Server{store: &store{pool: deps.Pool}, loc: cfg.BusinessTZ, now: time.Now, log: log}
	dashboard, err := newDashboard(cfg, log)
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Options{
		Name:            "analytics",
		GRPCAddr:        listen.GRPC,
		HTTPAddr:        listen.HTTP,
		Logger:          log,
		Interceptors:    []grpc.UnaryServerInterceptor{authn.UnaryServerInterceptor(auth)},
		Register:        func(g *grpc.Server) { analyticsv1.RegisterAnalyticsServiceServer(g, impl) },
		Gateways:        []server.GatewayFunc{analyticsv1.RegisterAnalyticsServiceHandlerFromEndpoint},
		Ready:           deps.Checks(),
		ShutdownTimeout: cfg.ShutdownTimeout,
		Pprof:           cfg.Pprof,
		Transport:       cfg.Transport,
		Handlers:        map[string]http.Handler{"/": dashboard},
	})
	if err != nil {
		return nil, err
	}
	pgutil.RegisterPoolMetrics(srv.Registry(), deps.Pool)
	return srv, nil
}

// newDashboard is the web dashboard analytics serves at "/": a client of the public REST
// APIs, at the ATES_WEB_*_URL addresses.
func newDashboard(cfg config.Config, log *slog.Logger) (http.Handler, error) {
	tlsCfg, err := tlsconf.Client(cfg.Transport.TLSCAFile)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	return web.New(web.Options{
		AuthURL:       cfg.Web.AuthURL,
		TasksURL:      cfg.Web.TasksURL,
		AccountingURL: cfg.Web.AccountingURL,
		AnalyticsURL:  cfg.Web.AnalyticsURL,
		// A call with wait may take ATES_WAIT_TIMEOUT.
		Client:     &http.Client{Transport: transport, Timeout: cfg.WaitTimeout + 10*time.Second},
		Logger:     log.With("component", "web"),
		BusinessTZ: cfg.BusinessTZ,
	})
}

// Run serves analytics until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	log = log.With("service", "analytics")
	deps, err := app.Open(ctx, cfg, "analytics", log, app.Needs{Postgres: true, Auth: true})
	if err != nil {
		return err
	}
	defer deps.Close()
	srv, err := New(cfg, cfg.AnalyticsListen, deps, deps.Auth, log)
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}
