package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/tlsconf"
	"github.com/ates/ates/services/internal/tlsconf/tlstest"
)

// TestTLS: with a certificate and key, gRPC and HTTP are served over TLS only, and the
// REST gateway reaches its own gRPC port over TLS.
func TestTLS(t *testing.T) {
	t.Parallel()
	files := tlstest.New(t)
	srv, _, _, _ := startWith(t, server.Options{
		Public:    []string{tasksv1.TaskService_ListTasks_FullMethodName},
		Transport: config.Transport{TLSCertFile: files.Cert, TLSKeyFile: files.Key},
	})
	clientTLS, err := tlsconf.Client(files.CA)
	require.NoError(t, err)

	t.Run("REST over HTTPS goes through the gateway", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
		resp, err := client.Get("https://" + srv.HTTPAddr() + "/v1/tasks")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.Contains(t, string(body), `"assigned_to":"a"`)
	})

	t.Run("gRPC over TLS works", func(t *testing.T) {
		conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
		require.NoError(t, err)
		defer conn.Close()
		_, err = tasksv1.NewTaskServiceClient(conn).ListTasks(context.Background(), &tasksv1.ListTasksRequest{})
		require.NoError(t, err)
	})

	t.Run("plaintext gRPC is refused", func(t *testing.T) {
		conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		_, err = tasksv1.NewTaskServiceClient(conn).ListTasks(context.Background(), &tasksv1.ListTasksRequest{})
		require.Error(t, err)
	})

	t.Run("plain HTTP is refused", func(t *testing.T) {
		code, body := get(t, "http://"+srv.HTTPAddr()+"/healthz")
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, "HTTPS")
	})

	t.Run("a client that does not trust the CA is refused", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
		resp, err := client.Get("https://" + srv.HTTPAddr() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		require.Error(t, err)
		require.True(t, strings.Contains(err.Error(), "certificate"), "%v", err)
	})
}
