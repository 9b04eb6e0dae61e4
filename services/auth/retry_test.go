package auth_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/server/servertest"
)

func TestRegisterRetriedWithTheSameRequestIDAnswersTheSameUser(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()
	admin := env.NewUser(t, authv1.Role_ROLE_ADMIN)
	users := func(email string) int {
		var n int
		require.NoError(t, env.Pool.QueryRow(ctx, "SELECT count(*) FROM users WHERE email = $1", email).Scan(&n))
		return n
	}

	t.Run("a worker registering themselves", func(t *testing.T) {
		t.Parallel()
		req := registerRequest(authv1.Role_ROLE_WORKER)
		req.RequestId = uuid.NewString()
		first, err := env.Client.Register(ctx, req)
		require.NoError(t, err)
		second, err := env.Client.Register(ctx, req)
		require.NoError(t, err, "a retry is not AlreadyExists")
		require.True(t, proto.Equal(first.GetUser(), second.GetUser()), "the same user:\n%v\n%v", first.GetUser(), second.GetUser())
		require.Equal(t, 1, users(req.Email))

		again := registerRequest(authv1.Role_ROLE_WORKER)
		again.Email = req.Email
		_, err = env.Client.Register(ctx, again)
		require.Equal(t, codes.AlreadyExists, status.Code(err), "without the request id the email is taken")
	})

	t.Run("an admin registering a manager", func(t *testing.T) {
		t.Parallel()
		req := registerRequest(authv1.Role_ROLE_MANAGER)
		req.RequestId = uuid.NewString()
		first, err := env.Client.Register(admin.Context(ctx), req)
		require.NoError(t, err)
		second, err := env.Client.Register(admin.Context(ctx), req)
		require.NoError(t, err)
		require.Equal(t, first.GetUser().GetId(), second.GetUser().GetId())
	})

	t.Run("another registration under the same request id is refused", func(t *testing.T) {
		t.Parallel()
		req := registerRequest(authv1.Role_ROLE_WORKER)
		req.RequestId = uuid.NewString()
		_, err := env.Client.Register(ctx, req)
		require.NoError(t, err)
		other := registerRequest(authv1.Role_ROLE_WORKER)
		other.RequestId = req.RequestId
		_, err = env.Client.Register(ctx, other)
		require.Equal(t, codes.AlreadyExists, status.Code(err), "err: %v", err)
		require.ErrorContains(t, err, "request_id")
		require.Zero(t, users(other.Email))

		thief := registerRequest(authv1.Role_ROLE_WORKER)
		thief.RequestId, thief.Email, thief.Name = req.RequestId, req.Email, req.Name // all but the secret
		_, err = env.Client.Register(ctx, thief)
		require.Equal(t, codes.AlreadyExists, status.Code(err), "knowing the request id and email is not enough to read the user")
	})

	t.Run("over REST with Idempotency-Key", func(t *testing.T) {
		t.Parallel()
		req := registerRequest(authv1.Role_ROLE_WORKER)
		body := `{"name":"` + req.Name + `","email":"` + req.Email + `","role":"ROLE_WORKER","photo_hash":"` + req.PhotoHash + `"}`
		header := http.Header{server.IdempotencyKeyHeader: {uuid.NewString()}}
		code, first := servertest.RESTWithHeader(t, env.HTTPAddr, "POST", "/v1/auth/register", "", header, body)
		require.Equal(t, http.StatusOK, code, "%v", first)
		code, second := servertest.RESTWithHeader(t, env.HTTPAddr, "POST", "/v1/auth/register", "", header, body)
		require.Equal(t, http.StatusOK, code, "%v", second)
		require.Equal(t, first["user"], second["user"])
		require.Equal(t, 1, users(req.Email))
	})
}
