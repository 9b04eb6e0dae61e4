package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/sql/migrations"
)

func TestOpenMissingDatabase(t *testing.T) {
	t.Parallel()
	cfg, err := config.LoadFrom(map[string]string{})
	require.NoError(t, err)
	u, err := url.Parse(pgtest.URL())
	require.NoError(t, err)
	name := "ates_missing_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	u.Path = "/" + name
	cfg.DatabaseURL = u.String()
	cfg.StartupTimeout = 5 * time.Second

	start := time.Now()
	d, err := app.Open(context.Background(), cfg, "test", slog.New(slog.DiscardHandler), app.Needs{Postgres: true})
	require.Nil(t, d)
	require.ErrorIs(t, err, pgutil.ErrNoDatabase)
	require.Less(t, time.Since(start), 2*time.Second, "reported at once, not after the startup timeout")
	require.ErrorContains(t, err, "ates migrate")
	host, port, splitErr := net.SplitHostPort(u.Host)
	require.NoError(t, splitErr)
	require.ErrorContains(t, err, fmt.Sprintf("createdb -h %s -p %s -U postgres %s", host, port, name))
}

// readyz serves d's checks as a service would and returns /readyz's status and body.
func readyz(t *testing.T, d *app.Deps) (int, string) {
	t.Helper()
	cfg, err := config.LoadFrom(map[string]string{})
	require.NoError(t, err)
	srv, err := d.HealthServer("test", "127.0.0.1:0", cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	servertest.Serve(t, srv.Serve)
	resp, err := http.Get("http://" + srv.HTTPAddr() + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestReadyWhileSchemaBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a migrated database is ready", func(t *testing.T) {
		t.Parallel()
		pool, _ := pgtest.NewDB(t)
		code, body := readyz(t, &app.Deps{Pool: pool})
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, "postgres: ok\nschema: ok\n", body)
	})

	t.Run("one migration behind is not ready and says what to run", func(t *testing.T) {
		t.Parallel()
		pool, _ := pgtest.NewDB(t)
		db := stdlib.OpenDBFromPool(pool)
		defer db.Close()
		provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
		require.NoError(t, err)
		sources := provider.ListSources()
		want := sources[len(sources)-1].Version
		_, err = provider.Down(ctx)
		require.NoError(t, err)

		code, body := readyz(t, &app.Deps{Pool: pool})
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.Equal(t, fmt.Sprintf("postgres: ok\nschema: schema at version %d, this binary needs %d: run ates migrate\n", sources[len(sources)-2].Version, want), body)
	})

	t.Run("a database never migrated is at version 0", func(t *testing.T) {
		t.Parallel()
		pool, _ := pgtest.NewDB(t)
		_, err := pool.Exec(ctx, "DROP TABLE goose_db_version")
		require.NoError(t, err)
		err = (&app.Deps{Pool: pool}).Checks()["schema"](ctx)
		require.ErrorContains(t, err, "schema at version 0, this binary needs")
	})
}

func TestReadyWhileAuthUnreachable(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	auth := grpc.NewServer()
	status := health.NewServer()
	healthpb.RegisterHealthServer(auth, status)
	go func() { _ = auth.Serve(lis) }()
	t.Cleanup(auth.Stop)

	cfg, err := config.LoadFrom(map[string]string{})
	require.NoError(t, err)
	cfg.AuthClient.Addr = lis.Addr().String()
	d, err := app.Open(context.Background(), cfg, "test", slog.New(slog.DiscardHandler), app.Needs{Auth: true})
	require.NoError(t, err)
	defer d.Close()

	code, body := readyz(t, d)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "auth: ok\n", body)

	status.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	code, body = readyz(t, d)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Equal(t, "auth: auth is NOT_SERVING\n", body)

	auth.Stop()
	code, body = readyz(t, d)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "auth: auth health check: ")
}

// TestHealthServerExportsThePool: a service with a pool shows the pool's metrics.
func TestHealthServerExportsThePool(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	cfg, err := config.LoadFrom(map[string]string{})
	require.NoError(t, err)
	srv, err := (&app.Deps{Pool: pool}).HealthServer("test", "127.0.0.1:0", cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	mfs, err := srv.Gatherer().Gather()
	require.NoError(t, err)
	var max float64
	for _, mf := range mfs {
		if mf.GetName() == "ates_db_pool_max_connections" {
			max = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	require.Equal(t, float64(pool.Stat().MaxConns()), max)
}
