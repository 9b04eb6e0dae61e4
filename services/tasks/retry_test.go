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
	"google.golang.org/protobuf/proto"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/tasks/taskstest"
)

func TestCreateRetriedWithTheSameRequestIDCreatesOnce(t *testing.T) {
	t.Parallel()
	for _, wait := range []bool{false, true} {
		name := "without wait"
		if wait {
			name = "with wait"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := taskstest.Start(t, taskstest.Options{})
			env.NewUser(t, authv1.Role_ROLE_WORKER)
			manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
			ctx := manager.Context(context.Background())
			req := &tasksv1.CreateTaskRequest{Description: "once", Wait: wait, RequestId: uuid.NewString()}

			first, err := env.Tasks.CreateTask(ctx, req)
			require.NoError(t, err)
			second, err := env.Tasks.CreateTask(ctx, req)
			require.NoError(t, err)
			require.Equal(t, first.GetId(), second.GetId(), "the retry names the same task")
			if wait {
				require.True(t, proto.Equal(first.GetTask(), second.GetTask()), "the retry answers the same task:\n%v\n%v", first.GetTask(), second.GetTask())
			}
			// A third attempt that waits returns once the event is applied, whichever
			// attempt's copy taskhandler got first.
			third, err := env.Tasks.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "once", Wait: true, RequestId: req.RequestId})
			require.NoError(t, err)
			require.Equal(t, first.GetId(), third.GetId())

			require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks"), "one task")
			require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'fee'"), "one fee")
			require.Equal(t, 1, count(t, env, "SELECT count(*) FROM processed_events"), "one event")
		})
	}
}

func TestRequestIDsAreTheCallersOwn(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	ann := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	bob := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	rid := uuid.NewString()

	a, err := env.Tasks.CreateTask(ann.Context(context.Background()), &tasksv1.CreateTaskRequest{Description: "ann's", Wait: true, RequestId: rid})
	require.NoError(t, err)
	b, err := env.Tasks.CreateTask(bob.Context(context.Background()), &tasksv1.CreateTaskRequest{Description: "bob's", Wait: true, RequestId: rid})
	require.NoError(t, err)
	require.NotEqual(t, a.GetId(), b.GetId(), "the same request id from another caller is another call")
	require.Equal(t, "bob's", b.GetTask().GetDescription())
	require.Equal(t, 2, count(t, env, "SELECT count(*) FROM tasks"))
}

func TestCompleteRetriedPaysOneReward(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	task := create(t, env, manager, "finish me")
	ctx := worker.Context(context.Background())
	req := &tasksv1.CompleteTaskRequest{Id: task.GetId(), Wait: true, RequestId: uuid.NewString()}

	first, err := env.Tasks.CompleteTask(ctx, req)
	require.NoError(t, err)
	second, err := env.Tasks.CompleteTask(ctx, req)
	require.NoError(t, err, "a retry of a completion that happened answers as the completion did")
	require.True(t, proto.Equal(first.GetTask(), second.GetTask()))
	require.Equal(t, tasksv1.TaskStatus_TASK_STATUS_COMPLETE, second.GetTask().GetStatus())
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'reward'"), "one reward")

	_, err = env.Tasks.CompleteTask(ctx, &tasksv1.CompleteTaskRequest{Id: task.GetId(), Wait: true, RequestId: uuid.NewString()})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "another request id is another completion: refused")
}

func TestAssignRetriedChargesOneFee(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	for range 3 {
		env.NewUser(t, authv1.Role_ROLE_WORKER)
	}
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	task := create(t, env, manager, "move me")
	ctx := manager.Context(context.Background())
	req := &tasksv1.AssignTaskRequest{Id: task.GetId(), Wait: true, RequestId: uuid.NewString()} // to a random worker

	first, err := env.Tasks.AssignTask(ctx, req)
	require.NoError(t, err)
	second, err := env.Tasks.AssignTask(ctx, req)
	require.NoError(t, err)
	require.Equal(t, first.GetTask().GetAssignedTo(), second.GetTask().GetAssignedTo(), "not moved again")
	require.Len(t, logRows(t, env, task.GetId()), 2, "the creation's fee and one assignment's")

	// The same request id on another task is another call.
	other := create(t, env, manager, "another")
	_, err = env.Tasks.AssignTask(ctx, &tasksv1.AssignTaskRequest{Id: other.GetId(), Wait: true, RequestId: req.RequestId})
	require.NoError(t, err)
	require.Len(t, logRows(t, env, other.GetId()), 2)
}

func TestIdempotencyKeyOverREST(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	key := uuid.NewString()
	post := func(body string) (int, map[string]any) {
		t.Helper()
		return servertest.RESTWithHeader(t, env.TasksHTTP, "POST", "/v1/task", manager.Token, http.Header{server.IdempotencyKeyHeader: {key}}, body)
	}

	code, first := post(`{"description":"by header","wait":true}`)
	require.Equal(t, http.StatusOK, code, "%v", first)
	code, second := post(`{"description":"by header","wait":true}`)
	require.Equal(t, http.StatusOK, code, "%v", second)
	require.Equal(t, first["id"], second["id"])
	require.Equal(t, first["task"], second["task"])
	code, same := post(`{"description":"by header","wait":true,"request_id":"` + strings.ToUpper(key) + `"}`)
	require.Equal(t, http.StatusOK, code, "%v", same)
	require.Equal(t, first["id"], same["id"], "the header and the body agree")

	code, out := post(`{"description":"by header","request_id":"` + uuid.NewString() + `"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["message"], "request_id")
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks"))
}

// TestUnconfirmedCreateIsUnknownAndARetryAppliesItOnce is the fault that started this:
// the broker hangs after the event went out. The call must not claim that nothing
// changed, and the retry it advises must not create a second task.
func TestUnconfirmedCreateIsUnknownAndARetryAppliesItOnce(t *testing.T) {
	t.Parallel()
	proxy := brokertest.NewProxy(t)
	env := taskstest.Start(t, taskstest.Options{APIBroker: func(cfg *broker.Config) {
		cfg.URL = proxy.URL()
		cfg.ConfirmTimeout = 300 * time.Millisecond
		cfg.Heartbeat = time.Minute // the hung connection stays up for the test
	}})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := manager.Context(context.Background())
	req := &tasksv1.CreateTaskRequest{Description: "maybe", Wait: true, RequestId: uuid.NewString()}
	create(t, env, manager, "the publisher channel is open")

	proxy.Hang()
	start := time.Now()
	_, err := env.Tasks.CreateTask(ctx, req)
	require.Less(t, time.Since(start), 2*time.Second, "the call fails within the confirm timeout")
	require.Equal(t, codes.Unavailable, status.Code(err), "err: %v", err)
	require.ErrorContains(t, err, "outcome is unknown")
	require.ErrorContains(t, err, "retry with the same request_id")
	require.NotContains(t, err.Error(), "nothing was changed")

	proxy.Forward()
	resp, err := env.Tasks.CreateTask(ctx, req)
	require.NoError(t, err)
	require.Equal(t, "maybe", resp.GetTask().GetDescription())
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks WHERE description = 'maybe'"), "one task")
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log WHERE task_id = $1", resp.GetId()), "one fee")
}

// TestReassignAllRetriedAfterTasksChanged retries a reassign-all after one of its tasks
// was completed and two were created, so the retry groups the open tasks into batches of
// other members (other events): it must move no task the operation moved already, and
// miss none of the open tasks.
func TestReassignAllRetriedAfterTasksChanged(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{Edit: func(cfg *config.Config) { cfg.ReassignBatchSize = 2 }})
	workers := map[string]authtest.User{}
	for range 3 {
		w := env.NewUser(t, authv1.Role_ROLE_WORKER)
		workers[w.ID.String()] = w
	}
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := manager.Context(context.Background())
	var old []*tasksv1.Task
	for range 5 {
		old = append(old, create(t, env, manager, "old"))
	}
	req := &tasksv1.ReassignTasksRequest{Wait: true, RequestId: uuid.NewString()}
	fees := func(id string) int {
		return count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'fee' AND task_id = $1", id)
	}

	first, err := env.Tasks.ReassignTasks(ctx, req)
	require.NoError(t, err)
	require.EqualValues(t, 5, first.GetTaskCount())
	require.EqualValues(t, 5, first.GetReassignedCount())
	require.Len(t, first.GetEventIds(), 3)

	// In between: the second task is completed, two tasks are created.
	holder, err := env.Tasks.GetTask(ctx, &tasksv1.GetTaskRequest{Id: old[1].GetId()})
	require.NoError(t, err)
	_, err = env.Tasks.CompleteTask(workers[holder.GetTask().GetAssignedTo()].Context(context.Background()),
		&tasksv1.CompleteTaskRequest{Id: old[1].GetId(), Wait: true})
	require.NoError(t, err)
	added := []*tasksv1.Task{create(t, env, manager, "new"), create(t, env, manager, "new")}

	second, err := env.Tasks.ReassignTasks(ctx, req)
	require.NoError(t, err)
	require.Equal(t, first.GetOperationId(), second.GetOperationId(), "the same operation")
	require.EqualValues(t, 6, second.GetTaskCount())
	require.EqualValues(t, 2, second.GetReassignedCount(), "only the tasks created in between moved")
	for _, id := range second.GetEventIds() {
		require.NotContains(t, first.GetEventIds(), id, "every batch changed")
	}
	for _, task := range old {
		require.Equal(t, 2, fees(task.GetId()), "task %s: the creation's fee and one for the operation", task.GetId())
	}
	for _, task := range added {
		require.Equal(t, 2, fees(task.GetId()), "task %s: created in between, moved by the retry", task.GetId())
	}

	third, err := env.Tasks.ReassignTasks(ctx, req)
	require.NoError(t, err)
	require.Equal(t, second.GetEventIds(), third.GetEventIds(), "nothing changed: the same batches")
	require.EqualValues(t, 2, third.GetReassignedCount(), "answered from the applied events")
	require.Equal(t, 5+2+5+2, count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'fee'"), "no more fees")

	// Without a request id, a reassign-all is a new operation each time.
	fresh, err := env.Tasks.ReassignTasks(ctx, &tasksv1.ReassignTasksRequest{Wait: true})
	require.NoError(t, err)
	require.NotEqual(t, first.GetOperationId(), fresh.GetOperationId())
	require.EqualValues(t, 6, fresh.GetReassignedCount())
}
