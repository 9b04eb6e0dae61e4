package taskhandler_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	authv1 "github.com/ates/ates/gen/auth/v1"
	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/taskhandler"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestTasksTotalCountsAppliedChanges: ates_taskhandler_tasks_total counts what was
// applied, by action; a rejected completion counts nothing.
func TestTasksTotalCountsAppliedChanges(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{NoTaskhandler: true})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := context.Background()
	handler, err := taskhandler.New(env.Config,
		&app.Deps{Pool: env.Pool, Broker: brokertest.Dial(t, env.Config.Exchange)}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	servertest.Serve(t, handler.Consume)

	taskID := uuid.NewString()
	_, err = env.Deps.Broker.Publish(ctx, events.TaskCreate, &eventsv1.TaskCreate{TaskId: taskID, AuthorId: manager.ID.String(), Description: "counted", Fee: -10, Reward: 20})
	require.NoError(t, err)
	eventually(t, "the task is stored", func() bool { return count(t, env, "SELECT count(*) FROM tasks WHERE id = $1", taskID) == 1 })
	// The only worker holds the task; it goes to one who arrives now.
	other := env.NewUser(t, authv1.Role_ROLE_WORKER)
	_, err = env.Deps.Broker.Publish(ctx, events.TaskAssign, &eventsv1.TaskAssign{TaskId: taskID, AssigneeId: other.ID.String(), ActorId: manager.ID.String()})
	require.NoError(t, err)
	// Events are applied concurrently: the completions go out once the assign is settled.
	eventually(t, "the assign is settled", func() bool { return count(t, env, "SELECT count(*) FROM processed_events") == 2 })
	// A completion by someone who no longer holds the task is rejected.
	_, err = env.Deps.Broker.Publish(ctx, events.TaskComplete, &eventsv1.TaskComplete{TaskId: taskID, WorkerId: worker.ID.String()})
	require.NoError(t, err)
	eventually(t, "the bad completion is settled", func() bool { return count(t, env, "SELECT count(*) FROM processed_events") == 3 })
	_, err = env.Deps.Broker.Publish(ctx, events.TaskComplete, &eventsv1.TaskComplete{TaskId: taskID, WorkerId: other.ID.String()})
	require.NoError(t, err)
	eventually(t, "the completion is settled", func() bool { return count(t, env, "SELECT count(*) FROM processed_events") == 4 })

	require.Equal(t, map[string]float64{"created": 1, "assigned": 1, "completed": 1}, tasksTotal(t, handler))
}
