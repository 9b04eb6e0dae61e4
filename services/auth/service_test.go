package auth

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/systemtest"
)

func TestRunRefusesTheDevelopmentKey(t *testing.T) {
	t.Parallel()
	_, dbURL := pgtest.NewDB(t)
	listen := func() map[string]string {
		return map[string]string{
			"ATES_DATABASE_URL":    dbURL,
			"ATES_AUTH_GRPC_ADDR":  systemtest.FreeAddr(t),
			"ATES_AUTH_HTTP_ADDR":  systemtest.FreeAddr(t),
			"ATES_STARTUP_TIMEOUT": "5s",
		}
	}
	log := slog.New(slog.DiscardHandler)

	t.Run("without the development flag auth does not start and says how to make a key", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.LoadFrom(listen())
		require.NoError(t, err)
		// Were it to start, it would serve until this deadline and answer nil.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = app.Run(ctx, cfg, log, Spec)
		require.ErrorIs(t, err, config.ErrDevKey)
		require.ErrorContains(t, err, "openssl rand -base64 32")

		_, err = CreateAdmin(context.Background(), cfg, "Ada", "ada@example.com", "ada-photo-hash")
		require.ErrorIs(t, err, config.ErrDevKey, "no admin is stored under the development key either")
	})

	for name, vars := range map[string]map[string]string{
		"with the development flag auth starts": {"ATES_ALLOW_DEV_KEYS": "true"},
		"with a real key auth starts":           {"ATES_AUTH_HMAC_KEY": "k3WcXx9pVZ0m5q8Tn2Lr7Yb4Hs1Ju6Ae"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := listen()
			for k, v := range vars {
				env[k] = v
			}
			cfg, err := config.LoadFrom(env)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- app.Run(ctx, cfg, log, Spec) }()
			require.Eventually(t, func() bool {
				resp, err := http.Get("http://" + cfg.AuthListen.HTTP + "/readyz")
				if err != nil {
					return false
				}
				_ = resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			}, 30*time.Second, 20*time.Millisecond)
			cancel()
			require.NoError(t, <-done)
		})
	}
}

// TestSweepDeletesExpiredTokens runs the sweep at a short interval: an expired token's
// row goes, an unexpired one stays.
func TestSweepDeletesExpiredTokens(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	ctx := context.Background()
	store := NewStore(pool, []byte(config.DevHMACKey))
	for _, photo := range []string{"photo-live-1234", "photo-dead-1234"} {
		_, err := store.CreateUser(ctx, NewUser{Name: photo, Email: photo + "@example.com", PhotoHash: photo, Role: authv1.Role_ROLE_WORKER})
		require.NoError(t, err)
	}
	_, live, _, err := store.Login(ctx, "photo-live-1234", TokenPolicy{TTL: time.Hour, Max: 10})
	require.NoError(t, err)
	_, _, _, err = store.Login(ctx, "photo-dead-1234", TokenPolicy{TTL: time.Microsecond, Max: 10})
	require.NoError(t, err)
	count := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM tokens").Scan(&n))
		return n
	}
	require.Equal(t, 2, count(), "the expired token waits for the sweep")

	sweepCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sweepTokens(sweepCtx, store, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return count() == 1 }, 10*time.Second, 10*time.Millisecond)
	_, err = store.UserByToken(ctx, live)
	require.NoError(t, err, "the unexpired token stays")
}
