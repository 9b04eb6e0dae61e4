package tasks_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/ratelimit"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/taskhandler"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestWritesWaitForTaskhandlersBacklog: once taskhandler's queue holds
// ATES_TASKS_MAX_BACKLOG events, a write waits ATES_TASKS_BACKLOG_WAIT for it to shrink
// and is then refused with ResourceExhausted, publishing nothing; once taskhandler
// catches up, writes go through again.
func TestWritesWaitForTaskhandlersBacklog(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{NoTaskhandler: true, Edit: func(c *config.Config) {
		c.TasksMaxBacklog = 3
		c.TasksBacklogWait = 300 * time.Millisecond
	}})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := manager.Context(context.Background())
	for range 3 {
		_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "queued"})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return backlog(t, env) == 3 }, 5*time.Second, 20*time.Millisecond, "the API sees the backlog")

	start := time.Now()
	_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "one too many"})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "err: %v", err)
	require.ErrorContains(t, err, "nothing was changed, try again")
	delay, ok := ratelimit.RetryAfter(err)
	require.True(t, ok, "the refusal says when to try again (REST: Retry-After)")
	require.Equal(t, time.Second, delay)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "it waited for the backlog first")
	n, err := env.Deps.Broker.QueueDepth(context.Background(), env.Queue)
	require.NoError(t, err)
	require.Equal(t, 3, n, "the refused write published nothing")

	// taskhandler starts while a write waits: it catches up, and the write goes through.
	done := make(chan error, 1)
	go func() {
		_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "admitted", Wait: true})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	handler, err := taskhandler.New(env.Config,
		&app.Deps{Pool: env.Pool, Broker: brokertest.Dial(t, env.Config.Exchange)}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	servertest.Serve(t, handler.Consume)
	require.NoError(t, <-done)
	require.Eventually(t, func() bool { return count(t, env, "SELECT count(*) FROM tasks") == 4 }, 10*time.Second, 20*time.Millisecond)
}

// backlog reads ates_tasks_taskhandler_backlog from the API's /metrics.
func backlog(t *testing.T, env *taskstest.Env) int {
	t.Helper()
	resp, err := http.Get("http://" + env.TasksHTTP + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^ates_tasks_taskhandler_backlog\{service="tasks"\} (-?\d+)`).FindSubmatch(body)
	require.NotNil(t, m, "no ates_tasks_taskhandler_backlog in /metrics")
	n, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return n
}
