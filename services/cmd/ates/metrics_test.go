package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/systemtest"
)

// TestAllServesOneMetrics: `ates all` serves one /metrics for its process, on auth's HTTP
// port: the Go runtime's metrics once and every service's own, told apart by the
// service label. The other services' ports answer 404 and say where to look. Not
// parallel: it sets the environment.
func TestAllServesOneMetrics(t *testing.T) {
	_, dbURL := pgtest.NewDB(t)
	t.Setenv("ATES_DATABASE_URL", dbURL)
	t.Setenv("ATES_AMQP_URL", systemtest.PrivateVhost(t, broker.TestURL(), "ates-all-"+systemtest.RandomSuffix()))
	t.Setenv("ATES_ALLOW_DEV_KEYS", "true")
	t.Setenv("ATES_CLOSE_DAY_SCHEDULE", "@every 24h")
	t.Setenv("ATES_SHUTDOWN_TIMEOUT", "5s")
	httpAddr := map[string]string{}
	for _, name := range serviceNames() {
		upper := strings.ToUpper(name)
		httpAddr[name] = systemtest.FreeAddr(t)
		t.Setenv("ATES_"+upper+"_HTTP_ADDR", httpAddr[name])
		switch name {
		case "accounting", "analytics", "auth", "tasks":
			grpcAddr := systemtest.FreeAddr(t)
			t.Setenv("ATES_"+upper+"_GRPC_ADDR", grpcAddr)
			if name == "auth" {
				t.Setenv("ATES_AUTH_ADDR", grpcAddr)
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	logPath := filepath.Join(t.TempDir(), "ates.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	t.Cleanup(func() { _ = logFile.Close() })
	go func() { done <- execute(ctx, []string{"all"}, strings.NewReader(""), io.Discard, logFile) }()
	logText := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, logText())
		case <-time.After(30 * time.Second):
			t.Error("ates all did not stop")
		}
	}()

	// Every service with a pool has joined once its pool metrics are there.
	var body string
	var stopped error
	pool := regexp.MustCompile(`(?m)^ates_db_pool_max_connections\{service="([a-z]+)"\} `)
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			stopped = fmt.Errorf("ates all stopped early: %v", err)
			return true
		default:
		}
		code, b := httpGet(t, "http://"+httpAddr[metricsServedBy]+"/metrics")
		body = b
		return code == http.StatusOK && len(pool.FindAllString(body, -1)) == len(services)
	}, 60*time.Second, 100*time.Millisecond, "auth's /metrics has every service's pool")
	require.NoError(t, stopped, logText())
	for _, name := range serviceNames() {
		require.Contains(t, body, `ates_db_pool_max_connections{service="`+name+`"}`)
	}
	require.Regexp(t, `(?m)^ates_taskhandler_batch_events_count\{service="taskhandler"\} `, body)
	require.Regexp(t, `(?m)^grpc_server_started_total\{[^}]*service="tasks"\} `, body)
	require.Len(t, regexp.MustCompile(`(?m)^go_goroutines `).FindAllString(body, -1), 1, "go_goroutines once")
	require.NotContains(t, body, "go_goroutines{")

	for _, name := range serviceNames() {
		if name == metricsServedBy {
			continue
		}
		code, b := httpGet(t, "http://"+httpAddr[name]+"/metrics")
		require.Equal(t, http.StatusNotFound, code, "%s's /metrics", name)
		require.Contains(t, b, "/metrics on auth's HTTP port", "%s's /metrics says where to look", name)
		require.NotContains(t, b, "go_goroutines")
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
