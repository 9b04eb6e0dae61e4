package taskhandler_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/ates/ates/gen/auth/v1"
	eventsv1 "github.com/ates/ates/gen/events/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestAssignmentsNeedAManagerOrAnAdminAsActor: task_assign and tasks_reassign events that
// did not come through the API (forged onto the queue) are applied only when their actor
// is a manager or an admin; any other actor's are recorded as rejected, at once, and
// charge no fee.
func TestAssignmentsNeedAManagerOrAnAdminAsActor(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	other := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	admin := env.NewUser(t, authv1.Role_ROLE_ADMIN)
	accountant := env.NewUser(t, authv1.Role_ROLE_ACCOUNTANT)
	ctx := context.Background()

	created, err := env.Tasks.CreateTask(manager.Context(ctx), &tasksv1.CreateTaskRequest{Description: "wanted", Wait: true})
	require.NoError(t, err)
	task := created.GetId()
	holder := created.GetTask().GetAssignedTo()
	target := other.ID.String()
	if holder == target {
		target = worker.ID.String()
	}
	fees := func() int {
		return count(t, env, "SELECT count(*) FROM audit_log WHERE task_id = $1 AND kind = 'fee'", task)
	}
	require.Equal(t, 1, fees(), "the creation's fee")

	publish := func(key string, msg proto.Message) string {
		id, err := env.Deps.Broker.Publish(ctx, key, msg)
		require.NoError(t, err)
		return id
	}
	settled := func(id string) (outcome, reason string) {
		eventually(t, "the event is settled", func() bool {
			return count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = $1", id) == 1
		})
		require.NoError(t, env.Pool.QueryRow(ctx, "SELECT outcome, coalesce(reason, '') FROM processed_events WHERE event_id = $1", id).Scan(&outcome, &reason))
		return outcome, reason
	}

	forged := []struct {
		name  string
		actor string
		want  string
	}{
		{"a worker", worker.ID.String(), "role worker"},
		{"an accountant", accountant.ID.String(), "role accountant"},
		{"nobody", uuid.NewString(), "is not a user"},
	}
	for _, f := range forged {
		o, reason := settled(publish(events.TaskAssign, &eventsv1.TaskAssign{TaskId: task, AssigneeId: target, ActorId: f.actor}))
		require.Equal(t, "rejected", o, "task_assign by %s", f.name)
		require.Contains(t, reason, f.want)
		o, reason = settled(publish(events.TasksReassign, &eventsv1.TasksReassign{TaskIds: []string{task}, ActorId: f.actor}))
		require.Equal(t, "rejected", o, "tasks_reassign by %s", f.name)
		require.Contains(t, reason, f.want)
	}
	require.Equal(t, 1, fees(), "no forged assignment charged a fee")
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks WHERE id = $1 AND assignee_id = $2", task, holder), "the task did not move")

	o, _ := settled(publish(events.TaskAssign, &eventsv1.TaskAssign{TaskId: task, AssigneeId: target, ActorId: admin.ID.String()}))
	require.Equal(t, "applied", o, "an admin may assign")
	o, _ = settled(publish(events.TasksReassign, &eventsv1.TasksReassign{TaskIds: []string{task}, ActorId: manager.ID.String()}))
	require.Equal(t, "applied", o, "a manager may reassign")
	require.Equal(t, 3, fees())
	n, err := env.Deps.Broker.QueueDepth(ctx, broker.DeadLetterQueue(env.Queue))
	require.NoError(t, err)
	require.Zero(t, n, "rejections are not dead letters")
}

// TestADeactivatedManagerCannotAssign: a manager who was deactivated (who can no longer
// log in, so the API would refuse them) is no actor for task_assign or tasks_reassign
// either; their events are recorded as rejected and move no money.
func TestADeactivatedManagerCannotAssign(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	gone := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := context.Background()

	created, err := env.Tasks.CreateTask(manager.Context(ctx), &tasksv1.CreateTaskRequest{Description: "wanted", Wait: true})
	require.NoError(t, err)
	task, holder := created.GetId(), created.GetTask().GetAssignedTo()
	_, err = env.Pool.Exec(ctx, "UPDATE users SET active = false WHERE id = $1", gone.ID)
	require.NoError(t, err)
	money := func() (n int, total int64) {
		require.NoError(t, env.Pool.QueryRow(ctx, "SELECT count(*), coalesce(sum(amount), 0) FROM audit_log").Scan(&n, &total))
		return n, total
	}
	rows, total := money()
	require.Equal(t, 1, rows, "the creation's fee")

	for key, msg := range map[string]proto.Message{
		events.TaskAssign:    &eventsv1.TaskAssign{TaskId: task, ActorId: gone.ID.String()},
		events.TasksReassign: &eventsv1.TasksReassign{TaskIds: []string{task}, ActorId: gone.ID.String()},
	} {
		id, err := env.Deps.Broker.Publish(ctx, key, msg)
		require.NoError(t, err)
		eventually(t, "the event is settled", func() bool {
			return count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = $1", id) == 1
		})
		var outcome, reason string
		require.NoError(t, env.Pool.QueryRow(ctx, "SELECT outcome, coalesce(reason, '') FROM processed_events WHERE event_id = $1", id).Scan(&outcome, &reason))
		require.Equal(t, "rejected", outcome, "%s by a deactivated manager", key)
		require.Contains(t, reason, "deactivated")
	}
	n, after := money()
	require.Equal(t, rows, n, "no fee charged")
	require.Equal(t, total, after, "no money moved")
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks WHERE id = $1 AND assignee_id = $2", task, holder), "the task did not move")
}
