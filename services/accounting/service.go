// Package accounting is the accounting API: a user's balance for a business day with
// that day's audit log, and the company's earnings for a day. It only reads; balances
// are written by dailyaccounting and the audit log by taskhandler.
package accounting

import (
	"log/slog"
	"time"

	"google.golang.org/grpc"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/server"
)

// Spec is how ates builds and runs accounting.
var Spec = app.Spec{
	Name:  "accounting",
	Needs: app.Needs{Postgres: true, Auth: true},
	New:   app.Builder(New),
}

// Service is the built accounting API.
type Service struct{ *server.Server }

// New builds the accounting API on deps, listening on cfg.AccountingListen.
func New(cfg config.Config, deps *app.Deps, log *slog.Logger) (*Service, error) {
	impl := &Server{store: newStore(deps.Pool), loc: cfg.BusinessTZ, now: time.Now, log: log}
	srv, err := deps.Server(cfg, cfg.AccountingListen, log, server.Options{
		Name:         "accounting",
		Interceptors: []grpc.UnaryServerInterceptor{authn.UnaryServerInterceptor(deps.Auth)},
		Register:     func(g *grpc.Server) { accountingv1.RegisterAccountingServiceServer(g, impl) },
		Gateways:     []server.GatewayFunc{accountingv1.RegisterAccountingServiceHandlerFromEndpoint},
	})
	if err != nil {
		return nil, err
	}
	return &Service{srv}, nil
}
