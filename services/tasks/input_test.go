package tasks_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/tasks/taskstest"
)

func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	task := create(t, env, manager, "the one task")
	ctx := manager.Context(context.Background())
	wctx := worker.Context(context.Background())
	unknown := uuid.NewString()

	for _, tc := range []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"get with an unknown task id", func() error {
			_, err := env.Tasks.GetTask(ctx, &tasksv1.GetTaskRequest{Id: unknown})
			return err
		}, codes.NotFound, "id"},
		{"complete with an unknown task id", func() error {
			_, err := env.Tasks.CompleteTask(wctx, &tasksv1.CompleteTaskRequest{Id: unknown})
			return err
		}, codes.NotFound, "id"},
		{"assign with an unknown task id", func() error {
			_, err := env.Tasks.AssignTask(ctx, &tasksv1.AssignTaskRequest{Id: unknown})
			return err
		}, codes.NotFound, "id"},
		{"get with a malformed id", func() error {
			_, err := env.Tasks.GetTask(ctx, &tasksv1.GetTaskRequest{Id: "42"})
			return err
		}, codes.InvalidArgument, "id"},
		{"complete with a malformed id", func() error {
			_, err := env.Tasks.CompleteTask(wctx, &tasksv1.CompleteTaskRequest{Id: "not-a-uuid"})
			return err
		}, codes.InvalidArgument, "id"},
		{"create with an empty description", func() error {
			_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: ""})
			return err
		}, codes.InvalidArgument, "description"},
		{"create with a blank description", func() error {
			_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: " \t "})
			return err
		}, codes.InvalidArgument, "description"},
		{"create with a description of Unicode spaces", func() error {
			_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "\u00a0\u2003"})
			return err
		}, codes.InvalidArgument, "description"},
		{"create with a NUL in the description", func() error {
			_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "water\x00the plants"})
			return err
		}, codes.InvalidArgument, "description"},
		{"create with a line feed in the description", func() error {
			_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "water\nthe plants"})
			return err
		}, codes.InvalidArgument, "description"},
		{"create with a carriage return in the description", func() error {
			_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "water\rthe plants"})
			return err
		}, codes.InvalidArgument, "description"},
		{"create with an oversized description", func() error {
			_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: strings.Repeat("x", 2001)})
			return err
		}, codes.InvalidArgument, "description"},
		{"list with a bad page token", func() error {
			_, err := env.Tasks.ListTasks(ctx, &tasksv1.ListTasksRequest{PageToken: "garbage!"})
			return err
		}, codes.InvalidArgument, "page_token"},
		{"list with a forged page token", func() error {
			_, err := env.Tasks.ListTasks(ctx, &tasksv1.ListTasksRequest{PageToken: "bm90fGF0b2tlbg"})
			return err
		}, codes.InvalidArgument, "page_token"},
		{"list with an oversized page", func() error {
			_, err := env.Tasks.ListTasks(ctx, &tasksv1.ListTasksRequest{PageSize: 501})
			return err
		}, codes.InvalidArgument, "page_size"},
		{"assign to an unknown user", func() error {
			_, err := env.Tasks.AssignTask(ctx, &tasksv1.AssignTaskRequest{Id: task.GetId(), AssigneeId: unknown})
			return err
		}, codes.NotFound, "assignee_id"},
		{"assign to someone who is not a worker", func() error {
			_, err := env.Tasks.AssignTask(ctx, &tasksv1.AssignTaskRequest{Id: task.GetId(), AssigneeId: manager.ID.String()})
			return err
		}, codes.InvalidArgument, "assignee_id"},
		{"assign with a malformed assignee", func() error {
			_, err := env.Tasks.AssignTask(ctx, &tasksv1.AssignTaskRequest{Id: task.GetId(), AssigneeId: "bob"})
			return err
		}, codes.InvalidArgument, "assignee_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Equal(t, tc.code, status.Code(err), "err: %v", err)
			require.ErrorContains(t, err, tc.field)
			if tc.code == codes.InvalidArgument {
				fields := servertest.ViolatedFields(err)
				require.NotEmpty(t, fields, "a google.rpc.BadRequest names the field")
				for _, f := range fields {
					require.Equal(t, tc.field, f, "only the bad field is named")
				}
			}
		})
	}

	code, out := rest(t, env, "POST", "/v1/task", manager.Token, `{"description":""}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["message"], "description")
	code, _ = rest(t, env, "GET", "/v1/task/nope", manager.Token, "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = rest(t, env, "GET", "/v1/task/"+unknown, manager.Token, "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = rest(t, env, "POST", "/v1/task", manager.Token, `{"description": 5}`)
	require.Equal(t, http.StatusBadRequest, code, "a body of the wrong shape")

	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks"), "nothing but the first task was written")
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log"))
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM processed_events"), "no event was even published")
}

func TestNoWorkerIsAFailedPrecondition(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	_, err := env.Tasks.CreateTask(manager.Context(context.Background()), &tasksv1.CreateTaskRequest{Description: "nobody to do it"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.ErrorContains(t, err, "worker")
	code, out := rest(t, env, "POST", "/v1/task", manager.Token, `{"description":"nobody to do it"}`)
	require.Equal(t, http.StatusConflict, code, "FailedPrecondition is 409 over REST: %v", out)
	require.Zero(t, count(t, env, "SELECT count(*) FROM tasks"))
}

// TestTheLastWorkerGoneIsAFailedPreconditionStill: the API reuses a recent "a worker
// exists" for a second; a create in that second after the last worker was deactivated
// is still refused with FailedPrecondition (taskhandler's rejection, for a caller with
// wait) and writes no money.
func TestTheLastWorkerGoneIsAFailedPreconditionStill(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := manager.Context(context.Background())
	_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "while there is a worker", Wait: true})
	require.NoError(t, err)
	_, err = env.Pool.Exec(context.Background(), "UPDATE users SET active = false WHERE id = $1", worker.ID)
	require.NoError(t, err)

	_, err = env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "nobody left", Wait: true})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "err: %v", err)
	require.ErrorContains(t, err, "no active worker")
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks"))
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log"))
}

func TestBrokerDownIsUnavailableAndWritesNothing(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	require.NoError(t, env.Deps.Broker.Close())

	_, err := env.Tasks.CreateTask(manager.Context(context.Background()), &tasksv1.CreateTaskRequest{Description: "lost?", Wait: true})
	require.Equal(t, codes.Unavailable, status.Code(err), "err: %v", err)
	require.ErrorContains(t, err, "nothing was changed, try again", "the event never left: a retry is safe")
	require.NotContains(t, err.Error(), "unknown")
	require.Zero(t, count(t, env, "SELECT count(*) FROM tasks"))
	require.Zero(t, count(t, env, "SELECT count(*) FROM audit_log"))
}

func TestWaitWithoutTaskhandlerHitsTheDeadline(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{NoTaskhandler: true})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx, cancel := context.WithTimeout(manager.Context(context.Background()), 300*time.Millisecond)
	defer cancel()
	_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "queued", Wait: true})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "err: %v", err)

	resp, err := env.Tasks.CreateTask(manager.Context(context.Background()), &tasksv1.CreateTaskRequest{Description: "queued"})
	require.NoError(t, err, "without wait the call answers once the broker confirmed")
	require.NoError(t, uuid.Validate(resp.GetId()))
	require.Nil(t, resp.GetTask())
}
