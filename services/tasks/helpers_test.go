package tasks_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/tasks/taskstest"
)

// logRow is one audit_log row as the tests check it.
type logRow struct {
	User   string
	Kind   string
	Amount int64
}

// logRows reads a task's audit rows in the order they were written.
func logRows(t *testing.T, env *taskstest.Env, taskID string) []logRow {
	t.Helper()
	rows, err := env.Pool.Query(context.Background(),
		"SELECT user_id::text, kind, amount FROM audit_log WHERE task_id = $1 ORDER BY id", taskID)
	require.NoError(t, err)
	defer rows.Close()
	var out []logRow
	for rows.Next() {
		var r logRow
		require.NoError(t, rows.Scan(&r.User, &r.Kind, &r.Amount))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// count runs a count(*) query.
func count(t *testing.T, env *taskstest.Env, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, env.Pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// create makes a task as u and waits until it is stored.
func create(t *testing.T, env *taskstest.Env, u authtest.User, description string) *tasksv1.Task {
	t.Helper()
	resp, err := env.Tasks.CreateTask(u.Context(context.Background()), &tasksv1.CreateTaskRequest{Description: description, Wait: true})
	require.NoError(t, err)
	return resp.GetTask()
}

// assignTo gives the task to worker, as manager, and waits; a task the worker holds
// already is left as it is (naming its holder is refused: it would change nothing).
func assignTo(t *testing.T, env *taskstest.Env, manager authtest.User, taskID string, worker authtest.User) *tasksv1.Task {
	t.Helper()
	ctx := manager.Context(context.Background())
	got, err := env.Tasks.GetTask(ctx, &tasksv1.GetTaskRequest{Id: taskID})
	require.NoError(t, err)
	if got.GetTask().GetAssignedTo() == worker.ID.String() {
		return got.GetTask()
	}
	resp, err := env.Tasks.AssignTask(ctx, &tasksv1.AssignTaskRequest{Id: taskID, AssigneeId: worker.ID.String(), Wait: true})
	require.NoError(t, err)
	return resp.GetTask()
}

// rest calls the tasks API over HTTP and decodes the JSON answer.
func rest(t *testing.T, env *taskstest.Env, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	return servertest.REST(t, env.TasksHTTP, method, path, token, body)
}

// restWithHeaders is rest that returns the response headers too.
func restWithHeaders(t *testing.T, env *taskstest.Env, method, path, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	return servertest.RESTFrom(t, http.DefaultClient, env.TasksHTTP, method, path, token, nil, body)
}
