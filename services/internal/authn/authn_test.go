package authn_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/server"
)

// whoami answers GetTask with the caller from the context in the author field, so the
// test sees exactly what the interceptor put there.
type whoami struct {
	tasksv1.UnimplementedTaskServiceServer
}

func (whoami) GetTask(ctx context.Context, _ *tasksv1.GetTaskRequest) (*tasksv1.GetTaskResponse, error) {
	u, err := authn.Require(ctx, authv1.Role_ROLE_WORKER, authv1.Role_ROLE_MANAGER)
	if err != nil {
		return nil, err
	}
	return &tasksv1.GetTaskResponse{Task: &tasksv1.Task{Author: u.ID.String(), Description: u.Email}}, nil
}

// serve runs whoami behind the real interceptor chain, authenticating through a real auth
// service, and returns a client for it.
func serve(t *testing.T, env *authtest.Env, cacheTTL time.Duration) tasksv1.TaskServiceClient {
	t.Helper()
	client, err := authn.Dial(env.GRPCAddr, cacheTTL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	srv, err := server.New(server.Options{
		Name:         "whoami",
		GRPCAddr:     "127.0.0.1:0",
		HTTPAddr:     "127.0.0.1:0",
		Interceptors: []grpc.UnaryServerInterceptor{authn.UnaryServerInterceptor(client)},
		Register:     func(g *grpc.Server) { tasksv1.RegisterTaskServiceServer(g, whoami{}) },
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		require.NoError(t, <-done)
	})
	return tasksv1.NewTaskServiceClient(conn)
}

const someTask = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"

func TestInterceptor(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	env := authtest.Start(t, pool)
	svc := serve(t, env, 0)
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	accountant := env.NewUser(t, authv1.Role_ROLE_ACCOUNTANT)
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		md   []string
		want codes.Code
	}{
		{"a call with no token is unauthenticated", nil, codes.Unauthenticated},
		{"a header without the bearer scheme is unauthenticated", []string{"authorization", worker.Token}, codes.Unauthenticated},
		{"a basic header is unauthenticated", []string{"authorization", "Basic dXNlcjpwYXNz"}, codes.Unauthenticated},
		{"an empty bearer token is unauthenticated", []string{"authorization", "Bearer "}, codes.Unauthenticated},
		{"two authorization values are unauthenticated", []string{"authorization", "Bearer " + worker.Token, "authorization", "Bearer " + worker.Token}, codes.Unauthenticated},
		{"an unknown token is unauthenticated", []string{"authorization", "Bearer not-a-real-token"}, codes.Unauthenticated},
		{"a valid token with the wrong role is denied", []string{"authorization", "Bearer " + accountant.Token}, codes.PermissionDenied},
		{"a valid token goes through", []string{"authorization", "Bearer " + worker.Token}, codes.OK},
		{"the scheme is case-insensitive", []string{"authorization", "bearer " + worker.Token}, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := svc.GetTask(metadata.AppendToOutgoingContext(ctx, tc.md...), &tasksv1.GetTaskRequest{Id: someTask})
			require.Equal(t, tc.want, status.Code(err), "err: %v", err)
			if tc.want == codes.OK {
				require.Equal(t, worker.ID.String(), resp.GetTask().GetAuthor(), "the caller is in the context")
				require.Equal(t, worker.Email, resp.GetTask().GetDescription())
			}
		})
	}
}

func TestInterceptorCachesPositiveAnswers(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	env := authtest.Start(t, pool)
	cached := serve(t, env, time.Minute)
	uncached := serve(t, env, 0)
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	ctx := worker.Context(context.Background())
	req := &tasksv1.GetTaskRequest{Id: someTask}

	_, err := cached.GetTask(ctx, req)
	require.NoError(t, err)
	_, err = pool.Exec(context.Background(), "DELETE FROM tokens")
	require.NoError(t, err)

	_, err = cached.GetTask(ctx, req)
	require.NoError(t, err, "the cached answer is reused within its lifetime")
	_, err = uncached.GetTask(ctx, req)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "without a cache the revoked token fails at once")
}

func TestValidationRunsAfterAuthentication(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	env := authtest.Start(t, pool)
	svc := serve(t, env, 0)
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)

	_, err := svc.GetTask(context.Background(), &tasksv1.GetTaskRequest{Id: "bad"})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = svc.GetTask(worker.Context(context.Background()), &tasksv1.GetTaskRequest{Id: "bad"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.ErrorContains(t, err, "id")
}
