package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/server"
)

// serveCounting builds a server called name (with the TaskService over gRPC when
// withGRPC is set), registers test_events_total on its Registry, adds n to it and
// serves it until ctx ends; the test's cleanup waits for it to stop.
func serveCounting(t *testing.T, ctx context.Context, name string, withGRPC bool, n float64) *server.Server {
	t.Helper()
	opts := server.Options{Name: name, HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
	if withGRPC {
		opts.GRPCAddr = "127.0.0.1:0"
		opts.Register = func(g *grpc.Server) { tasksv1.RegisterTaskServiceServer(g, panicky{}) }
	}
	srv, err := server.New(opts)
	require.NoError(t, err)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_events_total", Help: "Events."})
	srv.Registry().MustRegister(c)
	c.Add(n)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop", name)
		}
	})
	return srv
}

// samples counts the lines of a /metrics body that are samples of the metric name.
func samples(body, name string) int {
	return len(regexp.MustCompile(`(?m)^`+name+`[ {]`).FindAllString(body, -1))
}

// TestOneMetricsPerProcess: under WithSharedMetrics (what `ates all` does), the server
// named to serve them answers /metrics with the process metrics once and every
// server's own metrics told apart by their service label; the other servers answer
// 404 and say where the metrics are.
func TestOneMetricsPerProcess(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // before the cleanups that wait for the servers to stop
	ctx = server.WithSharedMetrics(ctx, server.NewSharedMetrics("auth"))
	auth := serveCounting(t, ctx, "auth", true, 1)
	tasks := serveCounting(t, ctx, "tasks", true, 2)
	mail := serveCounting(t, ctx, "mailsender", false, 3)

	var body string
	require.Eventually(t, func() bool {
		var code int
		code, body = get(t, "http://"+auth.HTTPAddr()+"/metrics")
		return code == http.StatusOK && samples(body, "test_events_total") == 3
	}, 5*time.Second, 10*time.Millisecond, "auth's /metrics holds every server's metrics:\n%s", body)
	require.Contains(t, body, `test_events_total{service="auth"} 1`)
	require.Contains(t, body, `test_events_total{service="tasks"} 2`)
	require.Contains(t, body, `test_events_total{service="mailsender"} 3`)
	require.Regexp(t, `grpc_server_handled_total\{[^}]*grpc_service="tasks.v1.TaskService"[^}]*service="tasks"`, body)
	require.Regexp(t, `grpc_server_handled_total\{[^}]*grpc_service="tasks.v1.TaskService"[^}]*service="auth"`, body)
	require.Equal(t, 1, samples(body, "go_goroutines"), "the Go runtime's metrics appear once:\n%s", body)
	require.Equal(t, 1, samples(body, "process_start_time_seconds"))
	require.NotRegexp(t, `go_goroutines\{`, body, "process metrics carry no service label")

	for _, srv := range []*server.Server{tasks, mail} {
		code, other := get(t, "http://"+srv.HTTPAddr()+"/metrics")
		require.Equal(t, http.StatusNotFound, code)
		require.Contains(t, other, "/metrics on auth's HTTP port ("+auth.HTTPAddr()+")")
		require.Zero(t, samples(other, "go_goroutines"))
	}
}

// TestServiceMetricsAreLabelled: a server running alone serves the process metrics and
// its own, which carry service="<its name>" as under `ates all`.
func TestServiceMetricsAreLabelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // before the cleanups that wait for the servers to stop
	srv := serveCounting(t, ctx, "tasks", true, 4)
	code, body := get(t, "http://"+srv.HTTPAddr()+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `test_events_total{service="tasks"} 4`)
	require.Regexp(t, `grpc_server_handled_total\{[^}]*service="tasks"`, body)
	require.Equal(t, 1, samples(body, "go_goroutines"))
	require.NotRegexp(t, `go_goroutines\{`, body)
}
