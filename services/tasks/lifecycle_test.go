package tasks_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/tasks/taskstest"
)

func TestLifecycleOverGRPC(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := context.Background()

	created, err := env.Tasks.CreateTask(manager.Context(ctx), &tasksv1.CreateTaskRequest{Description: "paint the fence", Wait: true})
	require.NoError(t, err)
	task := created.GetTask()
	require.Equal(t, created.GetId(), task.GetId())
	require.Equal(t, "paint the fence", task.GetDescription())
	require.Equal(t, manager.ID.String(), task.GetAuthor())
	require.Equal(t, worker.ID.String(), task.GetAssignedTo(), "the only worker gets the task")
	require.Equal(t, worker.Name, task.GetAssigneeName(), "the create's answer names the assignee")
	require.Equal(t, tasksv1.TaskStatus_TASK_STATUS_IN_PROGRESS, task.GetStatus())
	require.GreaterOrEqual(t, task.GetFee(), int64(-20))
	require.LessOrEqual(t, task.GetFee(), int64(-10))
	require.GreaterOrEqual(t, task.GetReward(), int64(20))
	require.LessOrEqual(t, task.GetReward(), int64(40))
	require.Equal(t, []logRow{{worker.ID.String(), "fee", task.GetFee()}}, logRows(t, env, task.GetId()),
		"the assignment charged the worker the fee")

	got, err := env.Tasks.GetTask(worker.Context(ctx), &tasksv1.GetTaskRequest{Id: task.GetId()})
	require.NoError(t, err)
	require.Equal(t, task.GetFee(), got.GetTask().GetFee())
	require.Equal(t, worker.Name, got.GetTask().GetAssigneeName())

	done, err := env.Tasks.CompleteTask(worker.Context(ctx), &tasksv1.CompleteTaskRequest{Id: task.GetId(), Wait: true})
	require.NoError(t, err)
	require.Equal(t, tasksv1.TaskStatus_TASK_STATUS_COMPLETE, done.GetTask().GetStatus())
	require.NotNil(t, done.GetTask().GetCompletedAt())
	require.Equal(t, worker.Name, done.GetTask().GetAssigneeName(), "the complete's answer names the assignee")
	require.Equal(t, []logRow{
		{worker.ID.String(), "fee", task.GetFee()},
		{worker.ID.String(), "reward", task.GetReward()},
	}, logRows(t, env, task.GetId()), "completion credited the reward to the worker")

	_, err = env.Tasks.CompleteTask(worker.Context(ctx), &tasksv1.CompleteTaskRequest{Id: task.GetId(), Wait: true})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.Len(t, logRows(t, env, task.GetId()), 2, "a second completion pays nothing")
}

func TestLifecycleOverREST(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	other := env.NewUser(t, authv1.Role_ROLE_WORKER)
	admin := env.NewUser(t, authv1.Role_ROLE_ADMIN)

	code, out := rest(t, env, "POST", "/v1/task", admin.Token, `{"description":"fix the roof","wait":true}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	task := out["task"].(map[string]any)
	id := task["id"].(string)
	require.Equal(t, out["id"], id)
	require.Equal(t, "TASK_STATUS_IN_PROGRESS", task["status"])
	require.Contains(t, task, "assigned_to")
	require.Contains(t, task, "completed_at", "zero values are shown")

	// The assignment moves the task: to whichever of the two does not hold it.
	if task["assigned_to"] == worker.ID.String() {
		worker, other = other, worker
	}
	code, out = rest(t, env, "PUT", "/v1/task/"+id+"/assign", admin.Token, `{"assignee_id":"`+worker.ID.String()+`","wait":true}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, worker.ID.String(), out["task"].(map[string]any)["assigned_to"])
	require.Equal(t, worker.Name, out["task"].(map[string]any)["assignee_name"], "the assign's answer names the new assignee")

	code, _ = rest(t, env, "PUT", "/v1/task/"+id+"/complete", other.Token, `{"wait":true}`)
	require.Equal(t, http.StatusForbidden, code, "only the assignee completes")

	code, out = rest(t, env, "PUT", "/v1/task/"+id+"/complete", worker.Token, `{"wait":true}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, "TASK_STATUS_COMPLETE", out["task"].(map[string]any)["status"])

	code, out = rest(t, env, "GET", "/v1/task/"+id, worker.Token, "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	fee, reward := out["task"].(map[string]any)["fee"], out["task"].(map[string]any)["reward"]

	code, out = rest(t, env, "GET", "/v1/tasks", worker.Token, "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Len(t, out["tasks"], 1)
	require.Equal(t, worker.Name, out["tasks"].([]any)[0].(map[string]any)["assignee_name"], "list rows name the assignee")
	require.Equal(t, "", out["next_page_token"])

	rows := logRows(t, env, id)
	require.Len(t, rows, 3, "two assignments and one completion")
	require.Equal(t, "fee", rows[1].Kind)
	require.Equal(t, worker.ID.String(), rows[1].User)
	require.Equal(t, "reward", rows[2].Kind)
	require.Equal(t, worker.ID.String(), rows[2].User)
	require.Equal(t, fee, jsonInt(rows[1].Amount), "the fee row is the task's fee")
	require.Equal(t, reward, jsonInt(rows[2].Amount), "the reward row is the task's reward")

	code, _ = rest(t, env, "GET", "/v1/tasks", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
}

// jsonInt is how protojson writes an int64: as a string.
func jsonInt(n int64) string { return strconv.FormatInt(n, 10) }

// TestAssigningTheHolderChangesNothing: naming the worker who holds a task is refused
// with FailedPrecondition and charges no fee, however often it is asked.
func TestAssigningTheHolderChangesNothing(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	task := create(t, env, manager, "held already")
	require.Equal(t, worker.ID.String(), task.GetAssignedTo(), "the only worker holds it")
	for range 6 {
		_, err := env.Tasks.AssignTask(manager.Context(context.Background()), &tasksv1.AssignTaskRequest{
			Id: task.GetId(), AssigneeId: worker.ID.String(), Wait: true,
		})
		require.Equal(t, codes.FailedPrecondition, status.Code(err), "err: %v", err)
	}
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log WHERE task_id = $1", task.GetId()), "the creation's fee only")
}
