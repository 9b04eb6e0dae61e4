package taskhandler_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	authv1 "github.com/ates/ates/gen/auth/v1"
	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestTasksGoToActiveWorkersAtRandom: creates are spread over every active worker
// (about evenly), never to an inactive one, and a worker deactivated a moment ago gets
// nothing even while taskhandler's list of workers still names them.
func TestTasksGoToActiveWorkersAtRandom(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	ctx := context.Background()
	workers := []uuid.UUID{}
	for range 3 {
		workers = append(workers, env.NewUser(t, authv1.Role_ROLE_WORKER).ID)
	}
	inactive := env.NewUser(t, authv1.Role_ROLE_WORKER).ID
	_, err := env.Pool.Exec(ctx, "UPDATE users SET active = false WHERE id = $1", inactive)
	require.NoError(t, err)

	create := func(n int, label string) {
		for i := range n {
			_, err := env.Deps.Broker.Publish(ctx, events.TaskCreate, &eventsv1.TaskCreate{
				TaskId: uuid.NewString(), AuthorId: workers[0].String(), Description: fmt.Sprintf("%s %d", label, i), Fee: -10, Reward: 20,
			})
			require.NoError(t, err)
		}
	}
	create(300, "spread")
	eventually(t, "300 tasks stored", func() bool { return count(t, env, "SELECT count(*) FROM tasks") == 300 })
	for _, w := range workers {
		// Binomial(300, 1/3): mean 100, standard deviation 8.2; 60..140 is ±4.9 σ.
		n := count(t, env, "SELECT count(*) FROM tasks WHERE assignee_id = $1", w)
		require.True(t, n >= 60 && n <= 140, "worker %s got %d of 300 tasks", w, n)
	}
	require.Zero(t, count(t, env, "SELECT count(*) FROM tasks WHERE assignee_id = $1", inactive))

	// taskhandler read its list of workers within the last second; the one deactivated
	// now is still on it, and must not be picked.
	_, err = env.Pool.Exec(ctx, "UPDATE users SET active = false WHERE id = $1", workers[1])
	require.NoError(t, err)
	create(100, "after")
	eventually(t, "400 tasks stored", func() bool { return count(t, env, "SELECT count(*) FROM tasks") == 400 })
	require.Zero(t, count(t, env, "SELECT count(*) FROM tasks WHERE assignee_id = $1 AND description LIKE 'after %'", workers[1]))
	require.Equal(t, 400, count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'fee'"), "one fee per task")
	require.Zero(t, count(t, env, "SELECT count(*) FROM audit_log a JOIN tasks t ON t.id = a.task_id WHERE a.user_id <> t.assignee_id"),
		"every fee is charged to the task's assignee")
}

// TestAWorkerWhoJustArrivedIsAssigned: taskhandler read its list of workers while there
// was none (and rejected a task for it); a worker registers, and the next task, a moment
// later, goes to them rather than being rejected on the stale empty list.
func TestAWorkerWhoJustArrivedIsAssigned(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	ctx := context.Background()
	author := env.NewUser(t, authv1.Role_ROLE_MANAGER).ID
	create := func(description string) string {
		id, err := env.Deps.Broker.Publish(ctx, events.TaskCreate, &eventsv1.TaskCreate{
			TaskId: uuid.NewString(), AuthorId: author.String(), Description: description, Fee: -10, Reward: 20,
		})
		require.NoError(t, err)
		return id
	}
	first := create("nobody yet")
	eventually(t, "the first create is rejected", func() bool {
		return count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = $1 AND outcome = 'rejected'", first) == 1
	})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER).ID
	second := create("the newcomer's")
	eventually(t, "the second create is settled", func() bool {
		return count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = $1", second) == 1
	})
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = $1 AND outcome = 'applied'", second))
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks WHERE assignee_id = $1", worker))
}
