// Package analytics is the analytics API, for admins: how many workers are below zero on
// a day, what the company earned over a range of days, and the most rewarding task
// completed in a range. It only reads. Its HTTP port also serves the web dashboard
// (package web) at "/".
package analytics

import (
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	analyticsv1 "github.com/ates/ates/gen/analytics/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/tlsconf"
	"github.com/ates/ates/services/web"
)

// Spec is how ates builds and runs analytics.
var Spec = app.Spec{
	Name:  "analytics",
	Needs: app.Needs{Postgres: true, Auth: true},
	New:   app.Builder(New),
}

// Service is the built analytics API, with the dashboard on its HTTP port.
type Service struct{ *server.Server }

// New builds the analytics API on deps, listening on cfg.AnalyticsListen.
func New(cfg config.Config, deps *app.Deps, log *slog.Logger) (*Service, error) {
	impl := &Server{store: &store{pool: deps.Pool}, loc: cfg.BusinessTZ, now: time.Now, log: log}
	dashboard, err := newDashboard(cfg, log)
	if err != nil {
		return nil, err
	}
	srv, err := deps.Server(cfg, cfg.AnalyticsListen, log, server.Options{
		Name:         "analytics",
		Interceptors: []grpc.UnaryServerInterceptor{authn.UnaryServerInterceptor(deps.Auth)},
		Register:     func(g *grpc.Server) { analyticsv1.RegisterAnalyticsServiceServer(g, impl) },
		Gateways:     []server.GatewayFunc{analyticsv1.RegisterAnalyticsServiceHandlerFromEndpoint},
		Handlers:     map[string]http.Handler{"/": dashboard},
	})
	if err != nil {
		return nil, err
	}
	return &Service{srv}, nil
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
