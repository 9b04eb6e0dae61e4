package tasks_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/auth"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/internal/tlsconf"
	"github.com/ates/ates/services/internal/tlsconf/tlstest"
	"github.com/ates/ates/services/tasks"
)

// TestAuthToTasksOverTLS: with a certificate, a key and a CA configured, a user
// registers and logs in through auth over HTTPS, and calls tasks over HTTPS and gRPC
// over TLS; tasks authenticates the token by calling auth over TLS. Plaintext clients
// are refused.
func TestAuthToTasksOverTLS(t *testing.T) {
	t.Parallel()
	files := tlstest.New(t)
	cfg, err := config.LoadFrom(map[string]string{
		"ATES_TLS_CERT_FILE": files.Cert,
		"ATES_TLS_KEY_FILE":  files.Key,
		"ATES_TLS_CA_FILE":   files.CA,
	})
	require.NoError(t, err)
	log := slog.New(slog.DiscardHandler)
	loopback := config.Listen{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	cfg.AuthListen, cfg.TasksListen = loopback, loopback
	pool, _ := pgtest.NewDB(t)

	authSrv, err := auth.New(cfg, &app.Deps{Pool: pool}, log)
	require.NoError(t, err)
	servertest.Serve(t, authSrv.Serve)

	// As app.Open does for a service that authenticates through auth.
	creds, err := tlsconf.GRPCDial(cfg.Transport.TLSCAFile)
	require.NoError(t, err)
	authClient, err := authn.Dial(authSrv.GRPCAddr(), 0, creds)
	require.NoError(t, err)
	t.Cleanup(func() { _ = authClient.Close() })

	exchange, queues := brokertest.Names(t, "taskhandler")
	cfg.Queues.Taskhandler = queues[0]
	api, err := tasks.New(cfg, &app.Deps{Pool: pool, Broker: brokertest.Dial(t, exchange), Auth: authClient}, log)
	require.NoError(t, err)
	servertest.Serve(t, api.Serve)

	clientTLS, err := tlsconf.Client(files.CA)
	require.NoError(t, err)
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
	call := func(method, url, token, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := https.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		out := map[string]any{}
		require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
		return resp.StatusCode, out
	}

	authURL, tasksURL := "https://"+authSrv.HTTPAddr(), "https://"+api.HTTPAddr()
	code, out := call("POST", authURL+"/v1/auth/register", "",
		`{"name":"Tess Tls","email":"tess@example.com","role":"ROLE_WORKER","photo_hash":"tess-photo-hash"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	code, out = call("POST", authURL+"/v1/auth/login", "", `{"photo_hash":"tess-photo-hash"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	token, _ := out["token"].(string)
	require.NotEmpty(t, token)

	t.Run("REST over HTTPS, authenticated through auth over TLS", func(t *testing.T) {
		code, out := call("GET", tasksURL+"/v1/tasks", token, "")
		require.Equal(t, http.StatusOK, code, "%v", out)
		code, _ = call("GET", tasksURL+"/v1/tasks", "not-a-token", "")
		require.Equal(t, http.StatusUnauthorized, code, "auth was asked and said no")
	})

	t.Run("gRPC over TLS", func(t *testing.T) {
		conn, err := grpc.NewClient(api.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
		require.NoError(t, err)
		defer conn.Close()
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
		_, err = tasksv1.NewTaskServiceClient(conn).ListTasks(ctx, &tasksv1.ListTasksRequest{})
		require.NoError(t, err)
	})

	t.Run("plaintext clients are refused", func(t *testing.T) {
		resp, err := http.Get("http://" + api.HTTPAddr() + "/v1/tasks")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "an HTTP request to an HTTPS server")

		conn, err := grpc.NewClient(api.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
		_, err = tasksv1.NewTaskServiceClient(conn).ListTasks(ctx, &tasksv1.ListTasksRequest{})
		require.Error(t, err)

		plainAuth, err := authn.Dial(authSrv.GRPCAddr(), 0)
		require.NoError(t, err)
		defer plainAuth.Close()
		_, err = plainAuth.Authenticate(context.Background(), token)
		require.Error(t, err, "a plaintext client of auth gets nothing")
	})
}
