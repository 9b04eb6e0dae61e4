package auth_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/server/servertest"
)

// login logs u in once more and returns the new token.
func login(t *testing.T, env *authtest.Env, u authtest.User) string {
	t.Helper()
	resp, err := env.Client.Login(context.Background(), &authv1.LoginRequest{PhotoHash: u.PhotoHash})
	require.NoError(t, err)
	return resp.GetToken()
}

// works reports whether auth accepts token right now.
func works(t *testing.T, env *authtest.Env, token string) bool {
	t.Helper()
	_, err := env.Client.Authenticate(context.Background(), &authv1.AuthenticateRequest{Token: token})
	if status.Code(err) == codes.Unauthenticated {
		return false
	}
	require.NoError(t, err)
	return true
}

func TestLogout(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()
	u := env.NewUser(t, authv1.Role_ROLE_WORKER)
	other := login(t, env, u)

	_, err := env.Client.Logout(u.Context(ctx), &authv1.LogoutRequest{})
	require.NoError(t, err)
	require.False(t, works(t, env, u.Token), "the token logged out is refused at once")
	require.True(t, works(t, env, other), "the user's other token still works")

	_, err = env.Client.Logout(u.Context(ctx), &authv1.LogoutRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a revoked token cannot log out again")
	_, err = env.Client.Logout(ctx, &authv1.LogoutRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "logout needs a bearer token")

	t.Run("over REST", func(t *testing.T) {
		code, out := servertest.REST(t, env.HTTPAddr, "POST", "/v1/auth/logout", other, "{}")
		require.Equal(t, http.StatusOK, code, "%v", out)
		code, _ = servertest.REST(t, env.HTTPAddr, "GET", "/v1/auth/authenticate", other, "")
		require.Equal(t, http.StatusUnauthorized, code)
	})
}

func TestRevokeAll(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()
	admin := env.NewUser(t, authv1.Role_ROLE_ADMIN)

	t.Run("a user revokes all their own tokens, and only theirs", func(t *testing.T) {
		t.Parallel()
		u := env.NewUser(t, authv1.Role_ROLE_WORKER)
		tokens := []string{u.Token, login(t, env, u), login(t, env, u)}
		bystander := env.NewUser(t, authv1.Role_ROLE_WORKER)

		resp, err := env.Client.RevokeAll(u.Context(ctx), &authv1.RevokeAllRequest{})
		require.NoError(t, err)
		require.EqualValues(t, 3, resp.GetRevoked())
		for i, tok := range tokens {
			require.False(t, works(t, env, tok), "token %d", i)
		}
		require.True(t, works(t, env, bystander.Token))
	})

	t.Run("naming oneself is the same as naming no one", func(t *testing.T) {
		t.Parallel()
		u := env.NewUser(t, authv1.Role_ROLE_MANAGER)
		resp, err := env.Client.RevokeAll(u.Context(ctx), &authv1.RevokeAllRequest{UserId: u.ID.String()})
		require.NoError(t, err)
		require.EqualValues(t, 1, resp.GetRevoked())
		require.False(t, works(t, env, u.Token))
	})

	t.Run("a non-admin naming another user is refused and revokes nothing", func(t *testing.T) {
		t.Parallel()
		manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
		victim := env.NewUser(t, authv1.Role_ROLE_WORKER)
		_, err := env.Client.RevokeAll(manager.Context(ctx), &authv1.RevokeAllRequest{UserId: victim.ID.String()})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "err: %v", err)
		require.True(t, works(t, env, victim.Token))
		require.True(t, works(t, env, manager.Token))
	})

	t.Run("an admin revokes another user's tokens", func(t *testing.T) {
		t.Parallel()
		u := env.NewUser(t, authv1.Role_ROLE_ACCOUNTANT)
		second := login(t, env, u)
		resp, err := env.Client.RevokeAll(admin.Context(ctx), &authv1.RevokeAllRequest{UserId: u.ID.String()})
		require.NoError(t, err)
		require.EqualValues(t, 2, resp.GetRevoked())
		require.False(t, works(t, env, u.Token))
		require.False(t, works(t, env, second))
		require.True(t, works(t, env, admin.Token), "the admin's own token is untouched")
	})

	t.Run("without a token it is unauthenticated", func(t *testing.T) {
		t.Parallel()
		_, err := env.Client.RevokeAll(ctx, &authv1.RevokeAllRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
	})

	t.Run("a user_id that is no UUID is invalid", func(t *testing.T) {
		t.Parallel()
		_, err := env.Client.RevokeAll(admin.Context(ctx), &authv1.RevokeAllRequest{UserId: "bob"})
		require.Equal(t, codes.InvalidArgument, status.Code(err))
	})

	t.Run("over REST", func(t *testing.T) {
		t.Parallel()
		u := env.NewUser(t, authv1.Role_ROLE_WORKER)
		second := login(t, env, u)
		code, out := servertest.REST(t, env.HTTPAddr, "POST", "/v1/auth/revoke-all", admin.Token, `{"user_id":"`+u.ID.String()+`"}`)
		require.Equal(t, http.StatusOK, code, "%v", out)
		require.Equal(t, "2", out["revoked"], "int64 is a JSON string")
		require.False(t, works(t, env, second))

		code, out = servertest.REST(t, env.HTTPAddr, "POST", "/v1/auth/revoke-all", login(t, env, u), `{"user_id":"`+admin.ID.String()+`"}`)
		require.Equal(t, http.StatusForbidden, code, "%v", out)
	})
}

// TestTokensPerUserAreCapped logs a user in N+3 times with ATES_AUTH_MAX_TOKENS=N: the
// newest N tokens work, the oldest 3 are refused.
func TestTokensPerUserAreCapped(t *testing.T) {
	t.Parallel()
	const maxTokens = 4
	pool, _ := pgtest.NewDB(t)
	env := authtest.StartWith(t, pool, func(cfg *config.Config) { cfg.Auth.MaxTokens = 4 })
	ctx := context.Background()

	t.Run("sequential logins", func(t *testing.T) {
		t.Parallel()
		u := env.NewUser(t, authv1.Role_ROLE_WORKER)
		bystander := env.NewUser(t, authv1.Role_ROLE_WORKER)
		tokens := []string{u.Token}
		for range maxTokens + 2 {
			tokens = append(tokens, login(t, env, u))
		}
		require.Len(t, tokens, maxTokens+3)
		for i, tok := range tokens {
			require.Equal(t, i >= 3, works(t, env, tok), "login %d of %d", i+1, len(tokens))
		}
		require.True(t, works(t, env, bystander.Token), "another user's token is not counted")

		var stored int
		require.NoError(t, env.Pool.QueryRow(ctx, "SELECT count(*) FROM tokens WHERE user_id = $1", u.ID).Scan(&stored))
		require.Equal(t, maxTokens, stored)
	})

	t.Run("concurrent logins still leave exactly N", func(t *testing.T) {
		t.Parallel()
		u := env.NewUser(t, authv1.Role_ROLE_WORKER)
		const logins = 12
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got []string
		)
		for range logins {
			wg.Go(func() {
				resp, err := env.Client.Login(ctx, &authv1.LoginRequest{PhotoHash: u.PhotoHash})
				if err != nil {
					t.Errorf("login: %v", err)
					return
				}
				mu.Lock()
				got = append(got, resp.GetToken())
				mu.Unlock()
			})
		}
		wg.Wait()
		require.Len(t, got, logins)
		working := 0
		for _, tok := range append(got, u.Token) {
			if works(t, env, tok) {
				working++
			}
		}
		require.Equal(t, maxTokens, working)
		var stored int
		require.NoError(t, env.Pool.QueryRow(ctx, "SELECT count(*) FROM tokens WHERE user_id = $1", u.ID).Scan(&stored))
		require.Equal(t, maxTokens, stored)
	})

	t.Run("expired tokens do not count and are deleted by the next login", func(t *testing.T) {
		t.Parallel()
		u := env.NewUser(t, authv1.Role_ROLE_WORKER)
		live := login(t, env, u)
		_, err := env.Pool.Exec(ctx, "UPDATE tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1 AND created_at = (SELECT min(created_at) FROM tokens WHERE user_id = $1)", u.ID)
		require.NoError(t, err)
		require.False(t, works(t, env, u.Token), "the first token expired")
		fresh := []string{live}
		for range maxTokens - 1 {
			fresh = append(fresh, login(t, env, u))
		}
		for i, tok := range fresh {
			require.True(t, works(t, env, tok), "unexpired token %d", i)
		}
		var stored int
		require.NoError(t, env.Pool.QueryRow(ctx, "SELECT count(*) FROM tokens WHERE user_id = $1", u.ID).Scan(&stored))
		require.Equal(t, maxTokens, stored, "the expired token is gone, N live ones remain")
	})
}

// TestRevokedTokenStopsWorkingEverywhere: auth refuses a revoked token at once; another
// service's cached authn.Client within its cache TTL, the documented bound.
func TestRevokedTokenStopsWorkingEverywhere(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()
	u := env.NewUser(t, authv1.Role_ROLE_WORKER)
	const ttl = 500 * time.Millisecond
	client, err := authn.Dial(env.GRPCAddr, ttl)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })

	_, err = client.Authenticate(ctx, u.Token)
	require.NoError(t, err, "the other service caches the answer")

	_, err = env.Client.Logout(u.Context(ctx), &authv1.LogoutRequest{})
	require.NoError(t, err)
	revoked := time.Now()
	require.False(t, works(t, env, u.Token), "auth refuses at once")

	require.Eventually(t, func() bool {
		_, err := client.Authenticate(ctx, u.Token)
		return err != nil
	}, 5*time.Second, 10*time.Millisecond)
	require.LessOrEqual(t, time.Since(revoked), ttl+time.Second, "refused within the cache TTL (plus the test's own slack)")
	_, err = client.Authenticate(ctx, u.Token)
	require.ErrorIs(t, err, authn.ErrUnauthenticated)
}

// TestTokenNeverInTheURL: over REST a token is taken only from the Authorization header.
func TestTokenNeverInTheURL(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	u := env.NewUser(t, authv1.Role_ROLE_WORKER)

	code, out := servertest.REST(t, env.HTTPAddr, "GET", "/v1/auth/authenticate?token="+u.Token, "", "")
	require.Equal(t, http.StatusUnauthorized, code, "%v", out)
	require.NotContains(t, out, "user", "the query's token authenticated no one")

	code, out = servertest.REST(t, env.HTTPAddr, "GET", "/v1/auth/authenticate", u.Token, "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, u.ID.String(), out["user"].(map[string]any)["id"])

	code, out = servertest.REST(t, env.HTTPAddr, "GET", "/v1/auth/authenticate?token=not-this-one", u.Token, "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, u.ID.String(), out["user"].(map[string]any)["id"], "the header's token is the one checked")
}
