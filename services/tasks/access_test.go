package tasks_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestAccess checks the access table of docs/product.md cell by cell: every call by every role, on a
// task that is the caller's own (assigned or authored) and on someone else's.
func TestAccess(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	ctx := context.Background()
	users := map[string]authtest.User{
		"worker":     env.NewUser(t, authv1.Role_ROLE_WORKER),
		"manager":    env.NewUser(t, authv1.Role_ROLE_MANAGER),
		"admin":      env.NewUser(t, authv1.Role_ROLE_ADMIN),
		"accountant": env.NewUser(t, authv1.Role_ROLE_ACCOUNTANT),
	}
	otherWorker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	spare := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := users["manager"]

	// own[role] is a task of that role's own: assigned to the worker, authored by the rest;
	// others is a task by another worker, held by another worker.
	own := map[string]*tasksv1.Task{}
	for role, u := range users {
		task := create(t, env, u, "own task of the "+role)
		own[role] = assignTo(t, env, manager, task.GetId(), otherWorker)
	}
	own["worker"] = assignTo(t, env, manager, own["worker"].GetId(), users["worker"])
	others := assignTo(t, env, manager, create(t, env, otherWorker, "someone else's").GetId(), otherWorker)

	ok, denied := codes.OK, codes.PermissionDenied
	for _, tc := range []struct {
		call             string
		do               func(ctx context.Context, task *tasksv1.Task) error
		own, someoneElse map[string]codes.Code
		before           func()
	}{
		{
			call: "get one task",
			do: func(ctx context.Context, task *tasksv1.Task) error {
				_, err := env.Tasks.GetTask(ctx, &tasksv1.GetTaskRequest{Id: task.GetId()})
				return err
			},
			own:         map[string]codes.Code{"worker": ok, "manager": ok, "admin": ok, "accountant": ok},
			someoneElse: map[string]codes.Code{"worker": denied, "manager": ok, "admin": ok, "accountant": denied},
		},
		{
			call: "assign one task",
			// Away to a spare worker and back, so that the task keeps its holder for the
			// rows below (naming the holder alone is refused: it would change nothing).
			do: func(ctx context.Context, task *tasksv1.Task) error {
				if _, err := env.Tasks.AssignTask(ctx, &tasksv1.AssignTaskRequest{Id: task.GetId(), AssigneeId: spare.ID.String(), Wait: true}); err != nil {
					return err
				}
				_, err := env.Tasks.AssignTask(ctx, &tasksv1.AssignTaskRequest{Id: task.GetId(), AssigneeId: task.GetAssignedTo(), Wait: true})
				return err
			},
			own:         map[string]codes.Code{"worker": denied, "manager": ok, "admin": ok, "accountant": denied},
			someoneElse: map[string]codes.Code{"worker": denied, "manager": ok, "admin": ok, "accountant": denied},
		},
		{
			call: "reassign all open tasks",
			do: func(ctx context.Context, _ *tasksv1.Task) error {
				_, err := env.Tasks.ReassignTasks(ctx, &tasksv1.ReassignTasksRequest{Wait: true})
				return err
			},
			own:         map[string]codes.Code{"worker": denied, "manager": ok, "admin": ok, "accountant": denied},
			someoneElse: map[string]codes.Code{"worker": denied, "manager": ok, "admin": ok, "accountant": denied},
		},
		{
			call: "create a task",
			do: func(ctx context.Context, _ *tasksv1.Task) error {
				_, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "new"})
				return err
			},
			own:         map[string]codes.Code{"worker": ok, "manager": ok, "admin": ok, "accountant": ok},
			someoneElse: map[string]codes.Code{"worker": ok, "manager": ok, "admin": ok, "accountant": ok},
		},
		{
			// Last: the worker's own completion changes the task. Reassign-all above may
			// have moved the tasks, so they go back to their workers first.
			call: "complete a task",
			before: func() {
				own["worker"] = assignTo(t, env, manager, own["worker"].GetId(), users["worker"])
				others = assignTo(t, env, manager, others.GetId(), otherWorker)
			},
			do: func(ctx context.Context, task *tasksv1.Task) error {
				_, err := env.Tasks.CompleteTask(ctx, &tasksv1.CompleteTaskRequest{Id: task.GetId()})
				return err
			},
			own:         map[string]codes.Code{"manager": denied, "admin": denied, "accountant": denied, "worker": ok},
			someoneElse: map[string]codes.Code{"worker": denied, "manager": denied, "admin": denied, "accountant": denied},
		},
	} {
		if tc.before != nil {
			tc.before()
		}
		for _, role := range []string{"accountant", "admin", "manager", "worker"} {
			u := users[role]
			t.Run("a "+role+" may "+tc.call+" on their own: "+tc.own[role].String(), func(t *testing.T) {
				require.Equal(t, tc.own[role], status.Code(tc.do(u.Context(ctx), own[role])))
			})
			t.Run("a "+role+" may "+tc.call+" on someone else's: "+tc.someoneElse[role].String(), func(t *testing.T) {
				require.Equal(t, tc.someoneElse[role], status.Code(tc.do(u.Context(ctx), others)))
			})
		}
	}
}

func TestListShowsWhatTheCallerMaySee(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	ctx := context.Background()
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	otherWorker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	accountant := env.NewUser(t, authv1.Role_ROLE_ACCOUNTANT)

	mine := assignTo(t, env, manager, create(t, env, manager, "for the worker").GetId(), worker)
	theirs := assignTo(t, env, manager, create(t, env, accountant, "by the accountant").GetId(), otherWorker)

	ids := func(u authtest.User, req *tasksv1.ListTasksRequest) ([]string, error) {
		resp, err := env.Tasks.ListTasks(u.Context(ctx), req)
		var out []string
		for _, task := range resp.GetTasks() {
			out = append(out, task.GetId())
		}
		return out, err
	}

	got, err := ids(worker, &tasksv1.ListTasksRequest{})
	require.NoError(t, err)
	require.Equal(t, []string{mine.GetId()}, got, "a worker sees the tasks assigned to them")

	got, err = ids(accountant, &tasksv1.ListTasksRequest{})
	require.NoError(t, err)
	require.Equal(t, []string{theirs.GetId()}, got, "an accountant sees the tasks they created")

	got, err = ids(manager, &tasksv1.ListTasksRequest{})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{mine.GetId(), theirs.GetId()}, got, "a manager sees all")

	got, err = ids(manager, &tasksv1.ListTasksRequest{AssigneeId: otherWorker.ID.String()})
	require.NoError(t, err)
	require.Equal(t, []string{theirs.GetId()}, got, "managers filter by assignee")

	_, err = ids(worker, &tasksv1.ListTasksRequest{AssigneeId: otherWorker.ID.String()})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a worker may not list another's tasks")

	_, err = env.Tasks.CompleteTask(worker.Context(ctx), &tasksv1.CompleteTaskRequest{Id: mine.GetId(), Wait: true})
	require.NoError(t, err)
	got, err = ids(manager, &tasksv1.ListTasksRequest{Status: tasksv1.TaskStatus_TASK_STATUS_COMPLETE})
	require.NoError(t, err)
	require.Equal(t, []string{mine.GetId()}, got, "status filter")
}

func TestListPages(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	var want []string
	for range 5 {
		want = append([]string{create(t, env, manager, "paged").GetId()}, want...) // newest first
	}
	var got []string
	token := ""
	for page := 0; ; page++ {
		require.Less(t, page, 3, "5 tasks in pages of 2 take 3 pages")
		resp, err := env.Tasks.ListTasks(manager.Context(context.Background()), &tasksv1.ListTasksRequest{PageSize: 2, PageToken: token})
		require.NoError(t, err)
		for _, task := range resp.GetTasks() {
			got = append(got, task.GetId())
		}
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
	}
	require.Equal(t, want, got)
}
