package taskhandler_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	authv1 "github.com/ates/ates/gen/auth/v1"
	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/taskhandler"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestABacklogIsAppliedInBatchesAndABadEventSinksNoNeighbour: a backlog of task events is
// applied many per transaction; events that break a constraint in the middle of a batch
// (an author that does not exist, a task id that is taken) are recorded as rejected on
// their own, and every other event of their batch is applied exactly once, duplicates
// of an event id included. (Of two creates of one task id, whichever is handled first
// wins: handlers run concurrently, as they always have.)
func TestABacklogIsAppliedInBatchesAndABadEventSinksNoNeighbour(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{NoTaskhandler: true})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	ctx := context.Background()

	// The backlog is queued before taskhandler starts, so that its batches are full.
	const n = 400
	var (
		good       []string    // task ids that must be stored, once each
		badAuthor  []string    // event ids rejected: the author does not exist
		takenID    [][2]string // event ids of two creates of one task id: one is rejected
		eventCount = map[string]bool{}
		deliveries int
	)
	publish := func(ev *eventsv1.TaskCreate, opts ...broker.PublishOption) string {
		id, err := env.Deps.Broker.Publish(ctx, events.TaskCreate, ev, opts...)
		require.NoError(t, err)
		eventCount[id] = true
		deliveries++
		return id
	}
	for i := range n {
		taskID := uuid.NewString()
		ev := &eventsv1.TaskCreate{TaskId: taskID, AuthorId: worker.ID.String(), Description: fmt.Sprintf("backlog %d", i), Fee: -11, Reward: 22}
		switch {
		case i%50 == 25:
			ev.AuthorId = uuid.NewString()
			badAuthor = append(badAuthor, publish(ev))
		case i%50 == 40:
			first := publish(ev)
			second := publish(&eventsv1.TaskCreate{TaskId: taskID, AuthorId: worker.ID.String(), Description: "the same id", Fee: -11, Reward: 22})
			takenID = append(takenID, [2]string{first, second})
			good = append(good, taskID)
		case i%100 == 7:
			// The same event twice: applied once.
			id := publish(ev)
			publish(ev, broker.WithEventID(id))
			good = append(good, taskID)
		default:
			publish(ev)
			good = append(good, taskID)
		}
	}

	handler, err := taskhandler.New(env.Config,
		&app.Deps{Pool: env.Pool, Broker: brokertest.Dial(t, env.Config.Exchange)}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	servertest.Serve(t, handler.Consume)

	eventually(t, "every event is settled", func() bool {
		return count(t, env, "SELECT count(*) FROM processed_events") == len(eventCount)
	})
	require.Equal(t, len(good), count(t, env, "SELECT count(*) FROM tasks"))
	require.Equal(t, len(good), count(t, env, "SELECT count(DISTINCT task_id) FROM audit_log WHERE kind = 'fee' AND amount = -11"))
	require.Equal(t, len(good), count(t, env, "SELECT count(*) FROM audit_log"), "one fee per stored task, none for a rejected event")
	require.Equal(t, len(good), count(t, env, "SELECT count(*) FROM processed_events WHERE outcome = 'applied'"))
	for _, id := range badAuthor {
		require.Equal(t, 1, count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = $1 AND outcome = 'rejected' AND reason LIKE '%does not exist%'", id))
	}
	for _, pair := range takenID {
		require.Equal(t, 1, count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = ANY($1) AND outcome = 'applied'", pair[:]))
		require.Equal(t, 1, count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = ANY($1) AND outcome = 'rejected' AND reason LIKE '%exists already%'", pair[:]))
	}
	require.Equal(t, int64(-11*len(good)), sum(t, env, "SELECT coalesce(sum(fees), 0) FROM worker_day_totals"), "the read model counts each fee once")
	dead, err := env.Deps.Broker.QueueDepth(ctx, broker.DeadLetterQueue(env.Queue))
	require.NoError(t, err)
	require.Zero(t, dead)

	require.Equal(t, map[string]float64{"created": float64(len(good))}, tasksTotal(t, handler),
		"one created per stored task; rejected and duplicate creates count nothing")

	// Many events per transaction: far fewer transactions than events.
	transactions, events := batchStats(t, handler)
	require.Equal(t, float64(deliveries), events, "every delivery committed once")
	require.Less(t, transactions, float64(deliveries)/4, "many events per transaction")
}

func sum(t *testing.T, env *taskstest.Env, sql string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, env.Pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

// batchStats reads ates_taskhandler_batch_events: how many transactions ran and how many
// events they held together.
func batchStats(t *testing.T, svc *taskhandler.Service) (batches, events float64) {
	t.Helper()
	mfs, err := svc.Server.Gatherer().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "ates_taskhandler_batch_events" {
			h := mf.GetMetric()[0].GetHistogram()
			return float64(h.GetSampleCount()), h.GetSampleSum()
		}
	}
	t.Fatal("no ates_taskhandler_batch_events metric")
	return 0, 0
}

// tasksTotal reads ates_taskhandler_tasks_total by action.
func tasksTotal(t *testing.T, svc *taskhandler.Service) map[string]float64 {
	t.Helper()
	mfs, err := svc.Server.Gatherer().Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "ates_taskhandler_tasks_total" {
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}
