package taskhandler_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	authv1 "github.com/ates/ates/gen/auth/v1"
	eventsv1 "github.com/ates/ates/gen/events/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestAReassignAllOperationMovesATaskOnce sends two batches of one operation that overlap
// (as a retry's regrouped batches do) at once: every task moves once, whichever batch
// gets it; a batch of another operation, or of none, moves them all again.
func TestAReassignAllOperationMovesATaskOnce(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	for range 3 {
		env.NewUser(t, authv1.Role_ROLE_WORKER)
	}
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := context.Background()
	ids := make([]string, 20)
	for i := range ids {
		resp, err := env.Tasks.CreateTask(manager.Context(ctx), &tasksv1.CreateTaskRequest{Description: "shuffled", Wait: true})
		require.NoError(t, err)
		ids[i] = resp.GetId()
	}
	reassign := func(op string, taskIDs []string) string {
		t.Helper()
		id, err := env.Deps.Broker.Publish(ctx, events.TasksReassign, &eventsv1.TasksReassign{
			TaskIds: taskIDs, ActorId: manager.ID.String(), OperationId: op,
		})
		require.NoError(t, err)
		return id
	}
	processed := func(eventIDs ...string) func() bool {
		return func() bool {
			return count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = ANY($1::uuid[])", eventIDs) == len(eventIDs)
		}
	}

	op := uuid.NewString()
	a, b := reassign(op, ids[:15]), reassign(op, ids[5:])
	eventually(t, "both batches are applied", processed(a, b))
	require.Equal(t, len(ids), count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'fee' AND event_id = ANY($1::uuid[])", []string{a, b}),
		"each task moved by one of the two batches")
	require.Zero(t, count(t, env, "SELECT count(*) FROM (SELECT task_id FROM audit_log WHERE kind = 'fee' GROUP BY 1 HAVING count(*) <> 2) x"),
		"every task: the creation's fee and one move")

	c := reassign(uuid.NewString(), ids)
	eventually(t, "another operation's batch is applied", processed(c))
	require.Equal(t, len(ids), count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'fee' AND event_id = $1", c),
		"another operation moves every task again")

	d := reassign("", ids) // as sent before operation ids: an operation of its own
	eventually(t, "a batch without an operation id is applied", processed(d))
	require.Equal(t, len(ids), count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'fee' AND event_id = $1", d))
}
