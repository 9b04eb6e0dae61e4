package tasks_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/ratelimit"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestCreateQuota is the abuse of issue 9: a self-registered worker creating tasks as
// fast as they can, each charging some worker a fee. Workers and accountants get the
// default burst of 20 (the refill is an hour here, so that a slow machine refills
// nothing while the test runs), then ResourceExhausted with the delay; nothing is
// charged for a refused create, a retry of an accepted one costs nothing, each user has
// a quota of their own, and managers and admins have none.
func TestCreateQuota(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{Edit: func(c *config.Config) {
		c.Limits.CreateTaskPerUser.Every = time.Hour
	}})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	ctx := context.Background()

	for _, tc := range []struct {
		role    authv1.Role
		allowed int // of 21 creates
	}{
		{authv1.Role_ROLE_WORKER, 20},
		{authv1.Role_ROLE_ACCOUNTANT, 20},
		{authv1.Role_ROLE_MANAGER, 21},
		{authv1.Role_ROLE_ADMIN, 21},
	} {
		t.Run(authn.RoleName(tc.role), func(t *testing.T) {
			t.Parallel()
			u := env.NewUser(t, tc.role)
			var last *tasksv1.CreateTaskRequest
			for i := range 21 {
				req := &tasksv1.CreateTaskRequest{Description: "quota", Wait: true, RequestId: uuid.NewString()}
				_, err := env.Tasks.CreateTask(u.Context(ctx), req)
				if i < tc.allowed {
					require.NoError(t, err, "create %d", i+1)
					last = req
					continue
				}
				require.Equal(t, codes.ResourceExhausted, status.Code(err), "create %d: %v", i+1, err)
				require.ErrorContains(t, err, "too many tasks created")
				delay, ok := ratelimit.RetryAfter(err)
				require.True(t, ok, "the refusal carries the delay")
				require.InDelta(t, time.Hour.Seconds(), delay.Seconds(), 60)
			}
			require.Equal(t, tc.allowed, count(t, env, "SELECT count(*) FROM tasks WHERE author_id = $1", u.ID))
			require.Equal(t, tc.allowed, count(t, env,
				"SELECT count(*) FROM audit_log l JOIN tasks t ON t.id = l.task_id WHERE t.author_id = $1 AND l.kind = 'fee'", u.ID),
				"one fee per created task, none for refused ones")

			_, err := env.Tasks.CreateTask(u.Context(ctx), last)
			require.NoError(t, err, "a retry of an accepted create is answered, not refused")
		})
	}
}

// TestCreateQuotaOverREST: the refusal is HTTP 429 with Retry-After.
func TestCreateQuotaOverREST(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{Edit: func(c *config.Config) {
		c.Limits.CreateTaskPerUser = config.RateLimit{Burst: 1, Every: 90 * time.Second}
	}})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	code, out := rest(t, env, "POST", "/v1/task", worker.Token, `{"description":"first"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	code, header, out := restWithHeaders(t, env, "POST", "/v1/task", worker.Token, `{"description":"second"}`)
	require.Equal(t, http.StatusTooManyRequests, code, "%v", out)
	s, err := strconv.Atoi(header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", header.Get("Retry-After"))
	require.True(t, s > 80 && s <= 90, "Retry-After %d", s)
}

// TestReassignAllQuota: a caller runs one reassign-all at a time, and at most
// ATES_TASKS_REASSIGN_PER_MINUTE (10) a minute; other callers are not held up.
func TestReassignAllQuota(t *testing.T) {
	t.Parallel()

	t.Run("one at a time per caller", func(t *testing.T) {
		t.Parallel()
		// Without taskhandler a reassign-all that waits stays running until its
		// context ends: its event is never applied.
		env := taskstest.Start(t, taskstest.Options{NoTaskhandler: true})
		worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
		manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
		other := env.NewUser(t, authv1.Role_ROLE_MANAGER)
		_, err := env.Pool.Exec(context.Background(),
			"INSERT INTO tasks (id, author_id, assignee_id, description, reward, fee) VALUES ($1, $2, $3, 'open', 20, -10)",
			uuid.New(), manager.ID, worker.ID)
		require.NoError(t, err)

		ctx, cancel := context.WithCancel(context.Background())
		running := make(chan error, 1)
		go func() {
			_, err := env.Tasks.ReassignTasks(manager.Context(ctx), &tasksv1.ReassignTasksRequest{Wait: true})
			running <- err
		}()
		require.Eventually(t, func() bool {
			n, err := env.Deps.Broker.QueueDepth(context.Background(), env.Queue)
			return err == nil && n == 1
		}, 10*time.Second, 10*time.Millisecond, "the first call published its batch and waits")

		_, err = env.Tasks.ReassignTasks(manager.Context(context.Background()), &tasksv1.ReassignTasksRequest{})
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		require.ErrorContains(t, err, "previous reassign-all is still running")
		_, ok := ratelimit.RetryAfter(err)
		require.True(t, ok)
		_, err = env.Tasks.ReassignTasks(other.Context(context.Background()), &tasksv1.ReassignTasksRequest{})
		require.NoError(t, err, "another manager is not held up")

		cancel()
		require.Equal(t, codes.Canceled, status.Code(<-running))
		// The server ends the call a moment after the client gave up on it.
		require.Eventually(t, func() bool {
			_, err := env.Tasks.ReassignTasks(manager.Context(context.Background()), &tasksv1.ReassignTasksRequest{})
			return err == nil
		}, 5*time.Second, 20*time.Millisecond, "once the first has ended, the next may run")
	})

	t.Run("a cap a minute per caller", func(t *testing.T) {
		t.Parallel()
		env := taskstest.Start(t, taskstest.Options{})
		env.NewUser(t, authv1.Role_ROLE_WORKER)
		manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
		other := env.NewUser(t, authv1.Role_ROLE_ADMIN)
		create(t, env, manager, "open")

		start := time.Now()
		accepted := 0
		var err error
		for ; accepted < 100; accepted++ {
			if _, err = env.Tasks.ReassignTasks(manager.Context(context.Background()), &tasksv1.ReassignTasksRequest{Wait: true}); err != nil {
				break
			}
		}
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		// Ten, and on a slow machine one more for every 6s the calls took.
		require.True(t, accepted >= 10 && accepted <= 10+int(time.Since(start)/(6*time.Second)), "%d accepted", accepted)
		delay, ok := ratelimit.RetryAfter(err)
		require.True(t, ok)
		require.True(t, delay > 0 && delay <= 6*time.Second, "delay %s", delay)

		code, header, out := restWithHeaders(t, env, "PUT", "/v1/tasks/reassign", manager.Token, `{}`)
		require.Equal(t, http.StatusTooManyRequests, code, "%v", out)
		require.NotEmpty(t, header.Get("Retry-After"))
		_, err = env.Tasks.ReassignTasks(other.Context(context.Background()), &tasksv1.ReassignTasksRequest{})
		require.NoError(t, err, "another caller has a quota of their own")
	})
}
