package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/server"
)

type panicky struct {
	tasksv1.UnimplementedTaskServiceServer
}

func (panicky) GetTask(context.Context, *tasksv1.GetTaskRequest) (*tasksv1.GetTaskResponse, error) {
	panic("boom")
}

// CreateTask echoes the request_id it got as the task id.
func (panicky) CreateTask(_ context.Context, req *tasksv1.CreateTaskRequest) (*tasksv1.CreateTaskResponse, error) {
	return &tasksv1.CreateTaskResponse{Id: req.GetRequestId()}, nil
}

func (panicky) ListTasks(context.Context, *tasksv1.ListTasksRequest) (*tasksv1.ListTasksResponse, error) {
	return &tasksv1.ListTasksResponse{Tasks: []*tasksv1.Task{{Description: "d", AssignedTo: "a"}}}, nil
}

func start(t *testing.T, ready map[string]server.Check) (*server.Server, *grpc.ClientConn, context.CancelFunc, chan error) {
	t.Helper()
	return startWith(t, server.Options{
		Ready: ready,
		// No authentication here: these tests call without tokens.
		Public: []string{
			tasksv1.TaskService_CreateTask_FullMethodName,
			tasksv1.TaskService_GetTask_FullMethodName,
			tasksv1.TaskService_ListTasks_FullMethodName,
		},
	})
}

// startWith serves the panicky TaskService on loopback ports with opts' Ready, Public
// and Transport.
func startWith(t *testing.T, opts server.Options) (*server.Server, *grpc.ClientConn, context.CancelFunc, chan error) {
	t.Helper()
	opts.Name = "test"
	opts.GRPCAddr = "127.0.0.1:0"
	opts.HTTPAddr = "127.0.0.1:0"
	opts.Register = func(g *grpc.Server) { tasksv1.RegisterTaskServiceServer(g, panicky{}) }
	opts.Gateways = []server.GatewayFunc{tasksv1.RegisterTaskServiceHandlerFromEndpoint}
	srv, err := server.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(); cancel() })
	return srv, conn, cancel, done
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	t.Parallel()
	var dbDown atomic.Pointer[error]
	srv, conn, cancel, done := start(t, map[string]server.Check{
		"postgres": func(context.Context) error {
			if p := dbDown.Load(); p != nil {
				return *p
			}
			return nil
		},
	})
	ctx := context.Background()
	base := "http://" + srv.HTTPAddr()

	t.Run("health is served over gRPC", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
	})

	t.Run("reflection lists the service", func(t *testing.T) {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel() // an open stream would (rightly) hold up the graceful stop
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(sctx)
		require.NoError(t, err)
		require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
		}))
		resp, err := stream.Recv()
		require.NoError(t, err)
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		require.Contains(t, names, "tasks.v1.TaskService")
		require.Contains(t, names, "grpc.health.v1.Health")
	})

	t.Run("a panic becomes Internal and the server stays up", func(t *testing.T) {
		_, err := tasksv1.NewTaskServiceClient(conn).GetTask(ctx, &tasksv1.GetTaskRequest{Id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"})
		require.Equal(t, codes.Internal, status.Code(err))
		require.NotContains(t, err.Error(), "boom", "the panic value stays in the log")
		_, err = tasksv1.NewTaskServiceClient(conn).ListTasks(ctx, &tasksv1.ListTasksRequest{})
		require.NoError(t, err)
	})

	t.Run("validation refuses bad input naming the field", func(t *testing.T) {
		_, err := tasksv1.NewTaskServiceClient(conn).GetTask(ctx, &tasksv1.GetTaskRequest{Id: "nope"})
		require.Equal(t, codes.InvalidArgument, status.Code(err))
		require.ErrorContains(t, err, "id")
	})

	t.Run("REST goes through the gateway with snake_case and zero values", func(t *testing.T) {
		code, body := get(t, base+"/v1/tasks")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"assigned_to":"a"`)
		require.Contains(t, body, `"reward":"0"`, "zero values are shown")
		require.Contains(t, body, `"next_page_token":""`)

		code, body = get(t, base+"/v1/task/nope")
		require.Equal(t, http.StatusBadRequest, code, "REST passes the validation interceptor")
		require.Contains(t, body, "id")
	})

	t.Run("healthz, readyz and metrics", func(t *testing.T) {
		code, _ := get(t, base+"/healthz")
		require.Equal(t, http.StatusOK, code)
		code, body := get(t, base+"/readyz")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "postgres: ok")
		code, body = get(t, base+"/metrics")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "grpc_server_handled_total")
	})

	t.Run("readyz fails while a dependency is down", func(t *testing.T) {
		down := errors.New("connection refused")
		dbDown.Store(&down)
		defer dbDown.Store(nil)
		code, body := get(t, base+"/readyz")
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, "postgres: connection refused")
	})

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a cancelled server stops cleanly")
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop")
	}
	resp, err := http.Get(base + "/healthz")
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "HTTP is closed after stop")
}

// TestReadyzBoundsEveryCheck: checks run at once under their own one-second timeout, so
// two hung dependencies make /readyz answer 503 in about a second, listed in name order.
func TestReadyzBoundsEveryCheck(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := func(context.Context) error { <-release; return nil } // ignores its context
	srv, _, _, _ := start(t, map[string]server.Check{
		"rabbitmq": hang,
		"postgres": func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		"auth":     func(context.Context) error { return nil },
	})

	start := time.Now()
	code, body := get(t, "http://"+srv.HTTPAddr()+"/readyz")
	took := time.Since(start)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Less(t, took, 1500*time.Millisecond, "the checks ran at once, each for at most a second")
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	require.Len(t, lines, 3, body)
	require.Equal(t, "auth: ok", lines[0])
	require.True(t, strings.HasPrefix(lines[1], "postgres: no answer within 1s"), body)
	require.Equal(t, "rabbitmq: no answer within 1s", lines[2])
}

// TestIdempotencyKeyFillsRequestID: the REST header (or gRPC metadata) becomes the
// request's request_id before validation; a body that names another id is refused.
func TestIdempotencyKeyFillsRequestID(t *testing.T) {
	t.Parallel()
	srv, conn, _, _ := start(t, nil)
	const id, other = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"
	post := func(key, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest("POST", "http://"+srv.HTTPAddr()+"/v1/task", strings.NewReader(body))
		require.NoError(t, err)
		if key != "" {
			req.Header.Set(server.IdempotencyKeyHeader, key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out := map[string]any{}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}

	for _, tc := range []struct {
		name, key, body string
		code            int
		want            string // the id answered, or a part of the error message
	}{
		{"the header alone fills request_id", id, `{"description":"d"}`, http.StatusOK, id},
		{"the body alone is kept", "", `{"description":"d","request_id":"` + id + `"}`, http.StatusOK, id},
		{"both agreeing is fine", id, `{"description":"d","request_id":"` + strings.ToUpper(id) + `"}`, http.StatusOK, strings.ToUpper(id)},
		{"both differing is refused naming request_id", id, `{"description":"d","request_id":"` + other + `"}`, http.StatusBadRequest, "request_id"},
		{"a header that is no UUID is refused naming request_id", "retry-1", `{"description":"d"}`, http.StatusBadRequest, "request_id"},
		{"neither leaves request_id empty", "", `{"description":"d"}`, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := post(tc.key, tc.body)
			require.Equal(t, tc.code, code, "%v", out)
			if code == http.StatusOK {
				require.Equal(t, tc.want, out["id"])
			} else {
				require.Contains(t, out["message"], tc.want)
			}
		})
	}

	t.Run("gRPC metadata works the same", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "idempotency-key", id)
		resp, err := tasksv1.NewTaskServiceClient(conn).CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "d"})
		require.NoError(t, err)
		require.Equal(t, id, resp.GetId())
		_, err = tasksv1.NewTaskServiceClient(conn).CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "d", RequestId: other})
		require.Equal(t, codes.InvalidArgument, status.Code(err))
	})
}
