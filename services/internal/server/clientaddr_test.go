package server_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/ratelimit"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/server/servertest"
)

// addrEcho answers ListTasks with one task whose description is the caller's address
// as server.ClientAddr reads it, and refuses GetTask as a rate limit would.
type addrEcho struct {
	tasksv1.UnimplementedTaskServiceServer
}

func (addrEcho) ListTasks(ctx context.Context, _ *tasksv1.ListTasksRequest) (*tasksv1.ListTasksResponse, error) {
	return &tasksv1.ListTasksResponse{Tasks: []*tasksv1.Task{{Description: server.ClientAddr(ctx).String()}}}, nil
}

func (addrEcho) GetTask(context.Context, *tasksv1.GetTaskRequest) (*tasksv1.GetTaskResponse, error) {
	return nil, ratelimit.Status("too many gets", 2500*time.Millisecond)
}

// startEcho serves addrEcho trusting X-Forwarded-For from 127.0.0.3 only.
func startEcho(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.New(server.Options{
		Name:           "test",
		GRPCAddr:       "127.0.0.1:0",
		HTTPAddr:       "127.0.0.1:0",
		Register:       func(g *grpc.Server) { tasksv1.RegisterTaskServiceServer(g, addrEcho{}) },
		Gateways:       []server.GatewayFunc{tasksv1.RegisterTaskServiceHandlerFromEndpoint},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")},
		// No token needed: only the address is under test.
		Public: []string{tasksv1.TaskService_ListTasks_FullMethodName, tasksv1.TaskService_GetTask_FullMethodName},
	})
	require.NoError(t, err)
	servertest.Serve(t, srv.Serve)
	return srv
}

// TestClientAddr: a REST call is known by its HTTP client's address, not the gateway's;
// X-Forwarded-For counts only from a trusted proxy, and nobody can pass an address off
// as the gateway's.
func TestClientAddr(t *testing.T) {
	t.Parallel()
	srv := startEcho(t)

	for _, tc := range []struct {
		name   string
		from   string
		header http.Header
		want   string
	}{
		{"a REST client is known by its own address, not the gateway's", "127.0.0.2", nil, "127.0.0.2"},
		{"X-Forwarded-For from a peer that is not a trusted proxy is ignored", "127.0.0.2",
			http.Header{"X-Forwarded-For": {"198.51.100.7"}}, "127.0.0.2"},
		{"X-Forwarded-For from a trusted proxy names the client", "127.0.0.3",
			http.Header{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"addresses a client wrote in front of the proxy's are not believed", "127.0.0.3",
			http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.7"}}, "198.51.100.7"},
		{"trusted proxies in the chain are skipped", "127.0.0.3",
			http.Header{"X-Forwarded-For": {"198.51.100.7, 127.0.0.3"}}, "198.51.100.7"},
		{"a trusted proxy without X-Forwarded-For is the client", "127.0.0.3", nil, "127.0.0.3"},
		{"a value that is not an address stops at the proxy", "127.0.0.3",
			http.Header{"X-Forwarded-For": {"198.51.100.7, not-an-ip"}}, "127.0.0.3"},
		{"the gateway's metadata cannot be sent as a header", "127.0.0.2",
			http.Header{"Grpc-Metadata-Ates-Client-Addr": {"198.51.100.7"}}, "127.0.0.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, out := servertest.RESTFrom(t, servertest.ClientFrom(t, tc.from), srv.HTTPAddr(), "GET", "/v1/tasks", "", tc.header, "")
			require.Equal(t, http.StatusOK, code, "%v", out)
			require.Equal(t, tc.want, out["tasks"].([]any)[0].(map[string]any)["description"])
		})
	}

	t.Run("a gRPC client is known by its peer address, whatever metadata it sends", func(t *testing.T) {
		t.Parallel()
		client := tasksv1.NewTaskServiceClient(servertest.DialFrom(t, srv.GRPCAddr(), "127.0.0.2"))
		ctx := metadata.AppendToOutgoingContext(context.Background(),
			"ates-client-addr", "198.51.100.7", "ates-gateway-mark", "a guess", "x-forwarded-for", "198.51.100.8")
		resp, err := client.ListTasks(ctx, &tasksv1.ListTasksRequest{})
		require.NoError(t, err)
		require.Equal(t, "127.0.0.2", resp.GetTasks()[0].GetDescription())
	})
}

// TestRetryAfter: a refusal carrying a retry delay is HTTP 429 with Retry-After in whole
// seconds, rounded up, and gRPC clients read the same delay from the status.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	srv := startEcho(t)
	id := uuid.NewString()

	code, header, out := servertest.RESTFrom(t, http.DefaultClient, srv.HTTPAddr(), "GET", "/v1/task/"+id, "", nil, "")
	require.Equal(t, http.StatusTooManyRequests, code, "%v", out)
	require.Equal(t, "3", header.Get("Retry-After"))
	require.Equal(t, "too many gets", out["message"])

	_, err := tasksv1.NewTaskServiceClient(servertest.Dial(t, srv)).GetTask(context.Background(), &tasksv1.GetTaskRequest{Id: id})
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	delay, ok := ratelimit.RetryAfter(err)
	require.True(t, ok, "the status carries a RetryInfo")
	require.Equal(t, 2500*time.Millisecond, delay)

	code, header, _ = servertest.RESTFrom(t, http.DefaultClient, srv.HTTPAddr(), "GET", "/v1/tasks", "", nil, "")
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, header.Get("Retry-After"), "only refusals say when to retry")
}
