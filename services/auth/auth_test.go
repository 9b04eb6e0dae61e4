package auth_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/server/servertest"
)

func newEnv(t *testing.T) *authtest.Env {
	t.Helper()
	pool, _ := pgtest.NewDB(t)
	return authtest.Start(t, pool)
}

func registerRequest(role authv1.Role) *authv1.RegisterRequest {
	id := uuid.NewString()
	return &authv1.RegisterRequest{
		Name:      "Ann " + id[:4],
		Email:     "ann-" + id[:8] + "@example.com",
		Role:      role,
		PhotoHash: "photo-" + id,
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()
	admin := env.NewUser(t, authv1.Role_ROLE_ADMIN)
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)

	for _, tc := range []struct {
		name   string
		caller *authtest.User
		role   authv1.Role
		want   codes.Code
	}{
		{"anyone may register a worker", nil, authv1.Role_ROLE_WORKER, codes.OK},
		{"an admin registers a manager", &admin, authv1.Role_ROLE_MANAGER, codes.OK},
		{"an admin registers an admin", &admin, authv1.Role_ROLE_ADMIN, codes.OK},
		{"an admin registers an accountant", &admin, authv1.Role_ROLE_ACCOUNTANT, codes.OK},
		{"an admin registers a worker", &admin, authv1.Role_ROLE_WORKER, codes.OK},
		{"a manager without a token is refused", nil, authv1.Role_ROLE_MANAGER, codes.PermissionDenied},
		{"an admin without a token is refused", nil, authv1.Role_ROLE_ADMIN, codes.PermissionDenied},
		{"an accountant registered by a worker is refused", &worker, authv1.Role_ROLE_ACCOUNTANT, codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			callCtx := ctx
			if tc.caller != nil {
				callCtx = tc.caller.Context(ctx)
			}
			req := registerRequest(tc.role)
			resp, err := env.Client.Register(callCtx, req)
			require.Equal(t, tc.want, status.Code(err), "err: %v", err)
			if tc.want != codes.OK {
				var n int
				require.NoError(t, env.Pool.QueryRow(ctx, "SELECT count(*) FROM users WHERE email = $1", req.Email).Scan(&n))
				require.Zero(t, n, "a refused registration writes nothing")
				return
			}
			require.Equal(t, req.Name, resp.GetUser().GetName())
			require.Equal(t, req.Email, resp.GetUser().GetEmail())
			require.Equal(t, tc.role, resp.GetUser().GetRole())
			require.NoError(t, uuid.Validate(resp.GetUser().GetId()))

			login, err := env.Client.Login(ctx, &authv1.LoginRequest{PhotoHash: req.PhotoHash})
			require.NoError(t, err)
			require.Equal(t, resp.GetUser().GetId(), login.GetUser().GetId())
		})
	}
}

func TestRegisterRefusesDuplicates(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()
	first := registerRequest(authv1.Role_ROLE_WORKER)
	_, err := env.Client.Register(ctx, first)
	require.NoError(t, err)

	sameEmail := registerRequest(authv1.Role_ROLE_WORKER)
	sameEmail.Email = strings.ToUpper(first.Email)
	_, err = env.Client.Register(ctx, sameEmail)
	require.Equal(t, codes.AlreadyExists, status.Code(err))
	require.ErrorContains(t, err, "email")

	samePhoto := registerRequest(authv1.Role_ROLE_WORKER)
	samePhoto.PhotoHash = first.PhotoHash
	_, err = env.Client.Register(ctx, samePhoto)
	require.Equal(t, codes.AlreadyExists, status.Code(err))
	require.ErrorContains(t, err, "photo_hash")

	var n int
	require.NoError(t, env.Pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n))
	require.Equal(t, 1, n)
}

func TestRegisterRefusesBadFields(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		edit  func(*authv1.RegisterRequest)
		field string
	}{
		{"an empty name", func(r *authv1.RegisterRequest) { r.Name = "" }, "name"},
		{"a name over 100 characters", func(r *authv1.RegisterRequest) { r.Name = strings.Repeat("n", 101) }, "name"},
		{"a blank name", func(r *authv1.RegisterRequest) { r.Name = " \u00a0\u2003 " }, "name"},
		{"a name with a NUL", func(r *authv1.RegisterRequest) { r.Name = "Nul\x00Worker" }, "name"},
		{"a name with a line feed (a mail header injection)", func(r *authv1.RegisterRequest) { r.Name = "Eve\nBcc: all@example.com" }, "name"},
		{"a name with a carriage return", func(r *authv1.RegisterRequest) { r.Name = "Eve\rWorker" }, "name"},
		{"a name with a C1 control character", func(r *authv1.RegisterRequest) { r.Name = "Eve\u0085Worker" }, "name"},
		{"an empty email", func(r *authv1.RegisterRequest) { r.Email = "" }, "email"},
		{"an email that is not one", func(r *authv1.RegisterRequest) { r.Email = "not-an-email" }, "email"},
		{"an oversized email", func(r *authv1.RegisterRequest) { r.Email = strings.Repeat("e", 250) + "@example.com" }, "email"},
		{"no role", func(r *authv1.RegisterRequest) { r.Role = authv1.Role_ROLE_UNSPECIFIED }, "role"},
		{"an unknown role", func(r *authv1.RegisterRequest) { r.Role = 42 }, "role"},
		{"an empty photo hash", func(r *authv1.RegisterRequest) { r.PhotoHash = "" }, "photo_hash"},
		{"an oversized photo hash", func(r *authv1.RegisterRequest) { r.PhotoHash = strings.Repeat("p", 513) }, "photo_hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := registerRequest(authv1.Role_ROLE_WORKER)
			tc.edit(req)
			_, err := env.Client.Register(ctx, req)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "err: %v", err)
			require.ErrorContains(t, err, tc.field)
		})
	}
	var n int
	require.NoError(t, env.Pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n))
	require.Zero(t, n, "nothing is written for bad input")
}

func TestLoginAndAuthenticate(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()
	u := env.NewUser(t, authv1.Role_ROLE_ACCOUNTANT)

	t.Run("an unknown photo hash is unauthenticated", func(t *testing.T) {
		t.Parallel()
		_, err := env.Client.Login(ctx, &authv1.LoginRequest{PhotoHash: "photo-nobody-has-this"})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
	})

	t.Run("authenticate returns id, name, email and role", func(t *testing.T) {
		t.Parallel()
		resp, err := env.Client.Authenticate(ctx, &authv1.AuthenticateRequest{Token: u.Token})
		require.NoError(t, err)
		require.Equal(t, u.ID.String(), resp.GetUser().GetId())
		require.Equal(t, u.Name, resp.GetUser().GetName())
		require.Equal(t, u.Email, resp.GetUser().GetEmail())
		require.Equal(t, authv1.Role_ROLE_ACCOUNTANT, resp.GetUser().GetRole())
	})

	t.Run("authenticate with no token field checks the bearer token", func(t *testing.T) {
		t.Parallel()
		resp, err := env.Client.Authenticate(u.Context(ctx), &authv1.AuthenticateRequest{})
		require.NoError(t, err)
		require.Equal(t, u.ID.String(), resp.GetUser().GetId())
		_, err = env.Client.Authenticate(ctx, &authv1.AuthenticateRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
	})

	t.Run("an unknown token is unauthenticated", func(t *testing.T) {
		t.Parallel()
		_, err := env.Client.Authenticate(ctx, &authv1.AuthenticateRequest{Token: "no-such-token"})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
	})

	t.Run("an expired token is unauthenticated", func(t *testing.T) {
		t.Parallel()
		login, err := env.Client.Login(ctx, &authv1.LoginRequest{PhotoHash: u.PhotoHash})
		require.NoError(t, err)
		require.True(t, login.GetExpiresAt().AsTime().After(login.GetUser().GetCreatedAt().AsTime()))
		_, err = env.Client.Authenticate(ctx, &authv1.AuthenticateRequest{Token: login.GetToken()})
		require.NoError(t, err, "fresh token works")

		tag, err := env.Pool.Exec(ctx, "UPDATE tokens SET expires_at = now() - interval '1 second' WHERE expires_at = $1", login.GetExpiresAt().AsTime())
		require.NoError(t, err)
		require.EqualValues(t, 1, tag.RowsAffected())
		_, err = env.Client.Authenticate(ctx, &authv1.AuthenticateRequest{Token: login.GetToken()})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
	})
}

// TestSecretsAreNotStored reads every text and bytea column of every table and looks for
// the photo hash and the token.
func TestSecretsAreNotStored(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()
	u := env.NewUser(t, authv1.Role_ROLE_WORKER)

	rows, err := env.Pool.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type IN ('text', 'bytea', 'character varying')`)
	require.NoError(t, err)
	type col struct{ table, column string }
	var cols []col
	for rows.Next() {
		var c col
		require.NoError(t, rows.Scan(&c.table, &c.column))
		cols = append(cols, c)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, cols)

	var seen int
	for _, c := range cols {
		vals, err := env.Pool.Query(ctx, "SELECT "+c.column+"::bytea FROM "+c.table)
		require.NoError(t, err)
		for vals.Next() {
			var b []byte
			require.NoError(t, vals.Scan(&b))
			seen++
			require.False(t, bytes.Contains(b, []byte(u.PhotoHash)), "%s.%s holds the photo hash", c.table, c.column)
			require.False(t, bytes.Contains(b, []byte(u.Token)), "%s.%s holds the token", c.table, c.column)
		}
		require.NoError(t, vals.Err())
	}
	require.Positive(t, seen, "the test read stored values")
}

func TestREST(t *testing.T) {
	t.Parallel()
	env := newEnv(t)

	do := func(t *testing.T, method, path, token, body string) (int, map[string]any) {
		t.Helper()
		return servertest.REST(t, env.HTTPAddr, method, path, token, body)
	}

	code, out := do(t, "POST", "/v1/auth/register", "", `{"name":"Rest Worker","email":"rest@example.com","role":"ROLE_WORKER","photo_hash":"rest-photo-hash"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	user := out["user"].(map[string]any)
	require.Equal(t, "rest@example.com", user["email"])
	require.Contains(t, user, "created_at", "snake_case field names")

	code, out = do(t, "POST", "/v1/auth/register", "", `{"name":"Rest Boss","email":"boss@example.com","role":"ROLE_MANAGER","photo_hash":"rest-boss-hash"}`)
	require.Equal(t, http.StatusForbidden, code, "%v", out)

	code, out = do(t, "POST", "/v1/auth/register", "", `{"name":"","email":"x@example.com","role":"ROLE_WORKER","photo_hash":"rest-photo-2"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["message"], "name")

	code, out = do(t, "POST", "/v1/auth/register", "", `{"name":"Again","email":"rest@example.com","role":"ROLE_WORKER","photo_hash":"rest-photo-3"}`)
	require.Equal(t, http.StatusConflict, code, "%v", out)

	code, out = do(t, "POST", "/v1/auth/login", "", `{"photo_hash":"unknown-photo-hash"}`)
	require.Equal(t, http.StatusUnauthorized, code, "%v", out)

	code, out = do(t, "POST", "/v1/auth/login", "", `{"photo_hash":"rest-photo-hash"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	token, _ := out["token"].(string)
	require.NotEmpty(t, token)
	require.GreaterOrEqual(t, len(token), 22, "at least 128 bits, base64")

	code, out = do(t, "GET", "/v1/auth/authenticate", token, "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, user["id"], out["user"].(map[string]any)["id"])
	require.Equal(t, "ROLE_WORKER", out["user"].(map[string]any)["role"])

	code, _ = do(t, "GET", "/v1/auth/authenticate", "bogus-token", "")
	require.Equal(t, http.StatusUnauthorized, code)

	code, _ = do(t, "GET", "/v1/auth/authenticate", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
}
