package taskhandler_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestCompletionsRaceReassignAll completes 240 tasks through the API while managers
// reshuffle every open task again and again, then checks the money from the database:
// one fee row per assignment that happened, at most one reward per task, paid to the
// worker who held the task when the completion committed.
func TestCompletionsRaceReassignAll(t *testing.T) {
	t.Parallel()
	const tasks, reassigners = 240, 2
	// Each reassigner is a manager of their own (a caller runs one reassign-all at a
	// time), with no cap a minute: the test reassigns as often as it can.
	env := taskstest.Start(t, taskstest.Options{Edit: func(c *config.Config) { c.Limits.ReassignPerMinute = 0 }})
	ctx := context.Background()
	workers := map[string]authtest.User{}
	for range 4 {
		w := env.NewUser(t, authv1.Role_ROLE_WORKER)
		workers[w.ID.String()] = w
	}
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)

	created := make([]*tasksv1.Task, tasks)
	var wg sync.WaitGroup
	for i := range created {
		wg.Go(func() {
			resp, err := env.Tasks.CreateTask(manager.Context(ctx), &tasksv1.CreateTaskRequest{Description: "race", Wait: true})
			require.NoError(t, err)
			created[i] = resp.GetTask()
		})
	}
	wg.Wait()

	// Reassigners reshuffle all open tasks again and again until the completions are done;
	// each has finished one round before the first completion is sent, so the two
	// really overlap.
	var (
		mu       sync.Mutex
		moved    int64
		rounds   int
		finished atomic.Bool
		started  sync.WaitGroup
		outcomes = map[codes.Code]int{}
	)
	for range reassigners {
		started.Add(1)
		reassigner := env.NewUser(t, authv1.Role_ROLE_MANAGER)
		wg.Go(func() {
			for first := true; first || !finished.Load(); first = false {
				resp, err := env.Tasks.ReassignTasks(reassigner.Context(ctx), &tasksv1.ReassignTasksRequest{Wait: true})
				require.NoError(t, err)
				mu.Lock()
				moved += resp.GetReassignedCount()
				rounds++
				mu.Unlock()
				if first {
					started.Done()
				}
			}
		})
	}
	started.Wait()

	// Each completion is sent by the worker who holds the task as the API reads it; by the
	// time it is applied a reassignment may have taken the task away.
	var completions sync.WaitGroup
	for _, task := range created {
		completions.Go(func() {
			got, err := env.Tasks.GetTask(manager.Context(ctx), &tasksv1.GetTaskRequest{Id: task.GetId()})
			require.NoError(t, err)
			w := workers[got.GetTask().GetAssignedTo()]
			_, err = env.Tasks.CompleteTask(w.Context(ctx), &tasksv1.CompleteTaskRequest{Id: task.GetId(), Wait: true})
			mu.Lock()
			outcomes[status.Code(err)]++
			mu.Unlock()
			if c := status.Code(err); c != codes.OK && c != codes.FailedPrecondition && c != codes.PermissionDenied {
				t.Errorf("complete %s: %v", task.GetId(), err)
			}
		})
	}
	completions.Wait()
	finished.Store(true)
	wg.Wait()
	t.Logf("completion outcomes: %v; %d reassign-all rounds moved %d tasks", outcomes, rounds, moved)
	require.Positive(t, outcomes[codes.OK], "some completions won")
	require.Equal(t, tasks, outcomes[codes.OK]+outcomes[codes.FailedPrecondition]+outcomes[codes.PermissionDenied])

	// Per task, from the database: the fee rows in the order written, then the reward.
	rows, err := env.Pool.Query(ctx, `
		SELECT t.id, t.status, t.assignee_id::text, t.fee, t.reward,
		       coalesce(array_agg(l.user_id::text ORDER BY l.id) FILTER (WHERE l.kind = 'fee'), '{}'),
		       coalesce(array_agg(l.amount ORDER BY l.id) FILTER (WHERE l.kind = 'fee'), '{}'),
		       coalesce(array_agg(l.user_id::text ORDER BY l.id) FILTER (WHERE l.kind = 'reward'), '{}'),
		       coalesce(array_agg(l.amount ORDER BY l.id) FILTER (WHERE l.kind = 'reward'), '{}'),
		       coalesce(max(l.id) FILTER (WHERE l.kind = 'fee'), 0) < coalesce(max(l.id) FILTER (WHERE l.kind = 'reward'), 9223372036854775807)
		FROM tasks t LEFT JOIN audit_log l ON l.task_id = t.id
		GROUP BY t.id`)
	require.NoError(t, err)
	defer rows.Close()
	seen, completed := 0, 0
	for rows.Next() {
		var (
			id, state, assignee     string
			fee, reward             int64
			feeUsers, rewardUsers   []string
			feeAmounts, rewardAmnts []int64
			rewardAfterLastFee      bool
		)
		require.NoError(t, rows.Scan(&id, &state, &assignee, &fee, &reward, &feeUsers, &feeAmounts, &rewardUsers, &rewardAmnts, &rewardAfterLastFee))
		seen++
		require.NotEmpty(t, feeUsers, "task %s: its creation charged a fee", id)
		for _, a := range feeAmounts {
			require.Equal(t, fee, a, "task %s: every fee row is the task's fee", id)
		}
		require.Equal(t, assignee, feeUsers[len(feeUsers)-1], "task %s: the last fee was charged to the current assignee", id)
		switch state {
		case "complete":
			completed++
			require.Equal(t, []string{assignee}, rewardUsers, "task %s: exactly one reward, to the assignee at completion", id)
			require.Equal(t, []int64{reward}, rewardAmnts)
			require.True(t, rewardAfterLastFee, "task %s: no reassignment after the completion", id)
		default:
			require.Empty(t, rewardUsers, "task %s: no reward for an open task", id)
		}
	}
	require.NoError(t, rows.Err())
	require.Equal(t, tasks, seen)
	require.Equal(t, outcomes[codes.OK], completed, "every OK completion and no other is complete")

	// No event wrote twice, and the fees are exactly the assignments that happened.
	require.Zero(t, count(t, env, `SELECT count(*) FROM (SELECT event_id, task_id, kind FROM audit_log
		GROUP BY 1, 2, 3 HAVING count(*) > 1) d`), "no event applied twice")
	require.Positive(t, moved, "the reassignments really moved tasks")
	require.Equal(t, tasks+int(moved), count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'fee'"),
		"one fee per creation plus one per task a reassignment moved")

	// The read models, written by the same statements under the same races, equal a
	// recomputation from the audit log and the tasks.
	var diff bytes.Buffer
	n, err := dailyaccounting.Verify(ctx, env.Pool, &diff)
	require.NoError(t, err)
	require.Zero(t, n, "read models differ from the audit log and tasks:\n%s", diff.String())
	require.Equal(t, count(t, env, "SELECT count(*) FROM audit_log"),
		count(t, env, "SELECT sum(fee_rows + reward_rows) FROM worker_day_totals"), "every money row is in the totals")
	require.Positive(t, count(t, env, "SELECT count(*) FROM task_tops"), "completions offered themselves as top tasks")
}
