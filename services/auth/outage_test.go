package auth_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/server/servertest"
)

// TestDatabaseOutageIsUnavailable: with PostgreSQL unreachable, calls answer
// Unavailable (HTTP 503), which clients retry, never Internal.
func TestDatabaseOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there any more: connections are refused
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+addr+"/ates?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	env := authtest.Start(t, pool)

	_, err = env.Client.Register(context.Background(), registerRequest(authv1.Role_ROLE_WORKER))
	require.Equal(t, codes.Unavailable, status.Code(err), "err: %v", err)
	require.ErrorContains(t, err, "database is unavailable")
	_, err = env.Client.Login(context.Background(), &authv1.LoginRequest{PhotoHash: "photo-hash-1"})
	require.Equal(t, codes.Unavailable, status.Code(err), "err: %v", err)

	code, out := servertest.REST(t, env.HTTPAddr, "POST", "/v1/auth/register", "",
		`{"name":"Wendy","email":"wendy@example.com","role":"ROLE_WORKER","photo_hash":"wendy-photo-hash"}`)
	require.Equal(t, http.StatusServiceUnavailable, code, "%v", out)
}
