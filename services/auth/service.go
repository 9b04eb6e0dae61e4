// Package auth is the auth service: it registers users, logs them in with their photo
// hash and answers every other service's Authenticate calls.
package auth

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"buf.build/go/protovalidate"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/ratelimit"
	"github.com/ates/ates/services/internal/server"
)

// public are the auth calls that work without a token (Register looks at the caller if
// there is one); AuthenticateCaller, Logout and RevokeAll need one.
var public = []string{
	authv1.AuthService_Register_FullMethodName,
	authv1.AuthService_Login_FullMethodName,
	authv1.AuthService_Authenticate_FullMethodName,
}

// Spec is how ates builds and runs auth.
var Spec = app.Spec{
	Name:  "auth",
	Needs: app.Needs{Postgres: true},
	New:   app.Builder(New),
}

// Service is the built auth service: its server, and its store, which also deletes
// expired tokens every cfg.Auth.TokenSweepInterval.
type Service struct {
	*server.Server
	Store *Store
	sweep time.Duration
	log   *slog.Logger
}

// New builds the auth service on deps, listening on cfg.AuthListen. It authenticates
// its own callers from its store, so deps.Auth is not used.
func New(cfg config.Config, deps *app.Deps, log *slog.Logger) (*Service, error) {
	store := NewStore(deps.Pool, []byte(cfg.Auth.HMACKey))
	impl := &Server{store: store, tokens: TokenPolicy{TTL: cfg.Auth.TokenTTL, Max: cfg.Auth.MaxTokens}, log: log}
	srv, err := deps.Server(cfg, cfg.AuthListen, log, server.Options{
		Name:           "auth",
		Interceptors:   []grpc.UnaryServerInterceptor{authn.UnaryServerInterceptor(store, authn.Optional(public...))},
		Register:       func(g *grpc.Server) { authv1.RegisterAuthServiceServer(g, impl) },
		Public:         public,
		Gateways:       []server.GatewayFunc{authv1.RegisterAuthServiceHandlerFromEndpoint},
		TrustedProxies: cfg.Limits.TrustedProxies,
	})
	if err != nil {
		return nil, err
	}
	impl.limits = newLimits(cfg.Limits, ratelimit.NewMetrics(srv.Registry()))
	return &Service{Server: srv, Store: store, sweep: cfg.Auth.TokenSweepInterval, log: log}, nil
}

// Serve serves and sweeps expired tokens until ctx ends.
func (s *Service) Serve(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Server.Serve(ctx) })
	g.Go(func() error { sweepTokens(ctx, s.Store, s.sweep, s.log); return nil })
	return g.Wait()
}

func newLimits(cfg config.Limits, m *ratelimit.Metrics) limits {
	return limits{
		failedLoginsPerAddr: m.New("failed_logins_per_addr", "failed logins from your address", ratelimit.Limit(cfg.FailedLoginsPerAddr)),
		failedLogins:        m.New("failed_logins", "failed logins from all clients", ratelimit.Limit(cfg.FailedLogins)),
		registerPerAddr:     m.New("register_per_addr", "registrations from your address", ratelimit.Limit(cfg.RegisterPerAddr)),
	}
}

// sweepTokens deletes expired tokens every interval (ATES_AUTH_TOKEN_SWEEP_INTERVAL);
// they are refused anyway, this only keeps the table small.
func sweepTokens(ctx context.Context, store *Store, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := store.DeleteExpiredTokens(ctx); err != nil {
				log.Warn("sweep expired tokens", "err", err)
			} else if n > 0 {
				log.Info("expired tokens deleted", "count", n)
			}
		}
	}
}

// CreateAdmin registers an admin without a token: the operator's way to the first admin.
func CreateAdmin(ctx context.Context, cfg config.Config, name, email, photoHash string) (string, error) {
	// The same field rules as Register, though no RPC is involved.
	// The admin's photo hash is stored under the key: under the development key it would
	// stop matching once a real one is set.
	if err := cfg.CheckKeys("auth"); err != nil {
		return "", err
	}
	if err := protovalidate.Validate(&authv1.RegisterRequest{
		Name: name, Email: email, PhotoHash: photoHash, Role: authv1.Role_ROLE_ADMIN,
	}); err != nil {
		return "", err
	}
	pool, err := pgutil.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return "", err
	}
	defer pool.Close()
	u, err := NewStore(pool, []byte(cfg.Auth.HMACKey)).CreateUser(ctx, NewUser{
		Name: name, Email: email, PhotoHash: photoHash, Role: authv1.Role_ROLE_ADMIN,
	})
	if err != nil {
		return "", fmt.Errorf("create admin: %w", err)
	}
	return u.ID.String(), nil
}
