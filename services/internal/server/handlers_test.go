package server_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/server/servertest"
)

// TestHandlersMountBesideTheBuiltInRoutes: a handler mounted at "/" (the web dashboard)
// gets every path the server does not serve itself; REST, /openapi.json, /healthz and
// /metrics keep answering as before.
func TestHandlersMountBesideTheBuiltInRoutes(t *testing.T) {
	t.Parallel()
	srv, err := server.New(server.Options{
		Name:     "test",
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Register: func(g *grpc.Server) { tasksv1.RegisterTaskServiceServer(g, addrEcho{}) },
		Gateways: []server.GatewayFunc{tasksv1.RegisterTaskServiceHandlerFromEndpoint},
		Public:   []string{tasksv1.TaskService_ListTasks_FullMethodName},
		Handlers: map[string]http.Handler{"/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "page "+r.URL.Path)
		})},
	})
	require.NoError(t, err)
	servertest.Serve(t, srv.Serve)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + srv.HTTPAddr() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/", "/login", "/static/app.css"} {
		code, body := get(path)
		require.Equal(t, http.StatusOK, code, path)
		require.Equal(t, "page "+path, body)
	}
	code, body := get("/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, body = get("/v1/tasks")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"tasks"`)
	code, _ = get("/openapi.json")
	require.Equal(t, http.StatusOK, code)
	code, body = get("/metrics")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, body, "page ")
}
