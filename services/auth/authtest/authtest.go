// Package authtest runs a real auth service on a loopback port for other packages'
// tests, and makes users with tokens.
package authtest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/auth"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/server/servertest"
)

// Env is a running auth service.
type Env struct {
	Config   config.Config
	Pool     *pgxpool.Pool
	GRPCAddr string
	HTTPAddr string
	Client   authv1.AuthServiceClient
	store    *auth.Store
}

// Start serves auth on pool until the test ends.
func Start(t testing.TB, pool *pgxpool.Pool) *Env {
	t.Helper()
	return StartWith(t, pool, nil)
}

// StartWith is Start with the configuration changed by edit (nil: the defaults).
func StartWith(t testing.TB, pool *pgxpool.Pool, edit func(*config.Config)) *Env {
	t.Helper()
	cfg, err := config.LoadFrom(map[string]string{})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if edit != nil {
		edit(&cfg)
	}
	cfg.AuthListen = config.Listen{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	svc, err := auth.New(cfg, &app.Deps{Pool: pool}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start auth: %v", err)
	}
	srv, store := svc.Server, svc.Store
	servertest.Serve(t, svc.Serve)
	conn := servertest.Dial(t, srv)
	cfg.AuthClient.Addr = srv.GRPCAddr()
	return &Env{
		Config:   cfg,
		Pool:     pool,
		GRPCAddr: srv.GRPCAddr(),
		HTTPAddr: srv.HTTPAddr(),
		Client:   authv1.NewAuthServiceClient(conn),
		store:    store,
	}
}

// Authenticator asks this auth service, as the other services do (no cache); it is
// closed when the test ends.
func (e *Env) Authenticator(t testing.TB) *authn.Client {
	t.Helper()
	c, err := authn.Dial(e.GRPCAddr, 0)
	if err != nil {
		t.Fatalf("dial auth: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// User is a registered, logged-in user.
type User struct {
	ID        uuid.UUID
	Name      string
	Email     string
	Role      authv1.Role
	PhotoHash string
	Token     string
}

// Authn is the user as the authentication interceptor puts them in the context.
func (u User) Authn() authn.User {
	return authn.User{ID: u.ID, Name: u.Name, Email: u.Email, Role: u.Role}
}

// Context returns ctx carrying the user's bearer token for outgoing gRPC calls.
func (u User) Context(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+u.Token)
}

// NewUser registers a user with role directly in the store (no admin token needed) and
// logs them in through the API.
func (e *Env) NewUser(t testing.TB, role authv1.Role) User {
	t.Helper()
	ctx := context.Background()
	suffix := uuid.NewString()[:8]
	u := User{
		Name:      fmt.Sprintf("%s %s", authn.RoleName(role), suffix),
		Email:     fmt.Sprintf("%s-%s@example.com", authn.RoleName(role), suffix),
		Role:      role,
		PhotoHash: "photo-" + uuid.NewString(),
	}
	row, err := e.store.CreateUser(ctx, auth.NewUser{Name: u.Name, Email: u.Email, PhotoHash: u.PhotoHash, Role: role})
	if err != nil {
		t.Fatalf("create %s: %v", authn.RoleName(role), err)
	}
	u.ID = row.ID
	resp, err := e.Client.Login(ctx, &authv1.LoginRequest{PhotoHash: u.PhotoHash})
	if err != nil {
		t.Fatalf("log %s in: %v", authn.RoleName(role), err)
	}
	u.Token = resp.GetToken()
	return u
}
