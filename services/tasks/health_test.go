package tasks_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestHealthNeedsNoToken is `grpcurl -plaintext localhost:50052
// grpc.health.v1.Health/Check` answering SERVING: probes carry no token.
func TestHealthNeedsNoToken(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{NoTaskhandler: true})
	health := healthpb.NewHealthClient(env.TasksConn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "Check without a token")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	watch, err := health.Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	first, err := watch.Recv()
	require.NoError(t, err, "Watch without a token")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.GetStatus())
}

// TestReadyWithRealAuth: an API is ready against a running auth, whose health check
// (behind auth's own authentication interceptor) takes no token either.
func TestReadyWithRealAuth(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	env := authtest.Start(t, pool)
	d := &app.Deps{Pool: pool, Auth: env.Authenticator(t)}
	for name, check := range d.Checks() {
		require.NoError(t, check(context.Background()), name)
	}
	require.Contains(t, d.Checks(), "auth")
}
