package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/server"
)

func do(t *testing.T, method, url string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

func TestCORS(t *testing.T) {
	t.Parallel()
	preflight := map[string]string{
		"Origin":                         "https://app.example.com",
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "authorization, content-type",
	}

	t.Run("off by default: no CORS headers", func(t *testing.T) {
		t.Parallel()
		srv, _, _, _ := start(t, nil)
		base := "http://" + srv.HTTPAddr()
		resp := do(t, http.MethodOptions, base+"/v1/tasks", preflight)
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
		resp = do(t, http.MethodGet, base+"/v1/tasks", map[string]string{"Origin": "https://app.example.com"})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	})

	t.Run("an allowed origin", func(t *testing.T) {
		t.Parallel()
		srv, _, _, _ := startWith(t, server.Options{
			Public:    []string{tasksv1.TaskService_ListTasks_FullMethodName},
			Transport: config.Transport{CORSOrigins: []string{"https://app.example.com"}},
		})
		base := "http://" + srv.HTTPAddr()

		resp := do(t, http.MethodOptions, base+"/v1/tasks", preflight)
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		require.Equal(t, "https://app.example.com", resp.Header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
		require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
		require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Idempotency-Key")
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"), "tokens travel in a header, never cookies")
		require.Contains(t, resp.Header.Values("Vary"), "Origin")

		resp = do(t, http.MethodGet, base+"/v1/tasks", map[string]string{"Origin": "https://app.example.com"})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "https://app.example.com", resp.Header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After")

		// Another origin gets nothing a browser would accept.
		evil := map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
		resp = do(t, http.MethodOptions, base+"/v1/tasks", evil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
		resp = do(t, http.MethodGet, base+"/v1/tasks", map[string]string{"Origin": "https://evil.example"})
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

		// No Origin: not a cross-origin browser call, served as ever.
		resp = do(t, http.MethodGet, base+"/healthz", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	})
}
