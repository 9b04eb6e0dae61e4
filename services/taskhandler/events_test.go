package taskhandler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/ates/ates/gen/auth/v1"
	eventsv1 "github.com/ates/ates/gen/events/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/tasks/taskstest"
)

// eventually polls cond until it holds or the test's patience runs out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 15*time.Second, 20*time.Millisecond, what)
}

func count(t *testing.T, env *taskstest.Env, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, env.Pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestTheSameEventDeliveredTwiceIsAppliedOnce(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	ctx := context.Background()

	taskID := uuid.NewString()
	create := &eventsv1.TaskCreate{TaskId: taskID, AuthorId: worker.ID.String(), Description: "twice", Fee: -15, Reward: 30}
	eventID := uuid.NewString()
	for range 2 {
		_, err := env.Deps.Broker.Publish(ctx, events.TaskCreate, create, broker.WithEventID(eventID))
		require.NoError(t, err)
	}
	// Events are applied concurrently, so the completions go out once the task exists, as
	// the API makes sure of.
	eventually(t, "the task is stored", func() bool {
		return count(t, env, "SELECT count(*) FROM tasks WHERE id = $1", taskID) == 1
	})
	complete := &eventsv1.TaskComplete{TaskId: taskID, WorkerId: worker.ID.String()}
	completeID := uuid.NewString()
	for range 3 {
		_, err := env.Deps.Broker.Publish(ctx, events.TaskComplete, complete, broker.WithEventID(completeID))
		require.NoError(t, err)
	}
	// A later, different event proves the duplicates have been consumed, not just queued.
	marker := uuid.NewString()
	_, err := env.Deps.Broker.Publish(ctx, events.TaskCreate, &eventsv1.TaskCreate{
		TaskId: marker, AuthorId: worker.ID.String(), Description: "marker", Fee: -10, Reward: 20,
	})
	require.NoError(t, err)
	eventually(t, "the marker task is stored", func() bool {
		return count(t, env, "SELECT count(*) FROM tasks WHERE id = $1", marker) == 1
	})
	eventually(t, "all events are processed", func() bool {
		return count(t, env, "SELECT count(*) FROM processed_events") == 3
	})

	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks WHERE id = $1 AND status = 'complete'", taskID))
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log WHERE task_id = $1 AND kind = 'fee' AND amount = -15", taskID))
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log WHERE task_id = $1 AND kind = 'reward' AND amount = 30", taskID))
	require.Equal(t, 2, count(t, env, "SELECT count(*) FROM audit_log WHERE task_id = $1", taskID))
}

func TestBadMessagesGoToTheDeadLetterQueue(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	ctx := context.Background()
	admin, err := amqp.Dial(broker.TestURL())
	require.NoError(t, err)
	defer admin.Close()
	ch, err := admin.Channel()
	require.NoError(t, err)

	// Signed by the tasks API's key: bad bodies from the trusted producer itself.
	raw := func(key, typ string, body []byte) {
		p := amqp.Publishing{MessageId: uuid.NewString(), Type: typ, ContentType: broker.ContentTypeProtobuf, Body: body}
		env.Config.EventKeysOf(events.Tasks).Sign(&p)
		require.NoError(t, ch.PublishWithContext(ctx, env.Config.Exchange, key, false, false, p))
	}
	raw(events.TaskCreate, "events.v1.TaskCreate", []byte{0xff, 0xff, 0xff})
	invalid, err := proto.Marshal(&eventsv1.TaskCreate{TaskId: uuid.NewString(), AuthorId: worker.ID.String(), Description: "cheap", Fee: -1, Reward: 30})
	require.NoError(t, err)
	raw(events.TaskCreate, "events.v1.TaskCreate", invalid)
	raw(events.TaskComplete, "events.v1.TaskCreate", invalid)
	nul, err := proto.Marshal(&eventsv1.TaskCreate{TaskId: uuid.NewString(), AuthorId: worker.ID.String(), Description: "nul\x00byte", Fee: -10, Reward: 30})
	require.NoError(t, err)
	raw(events.TaskCreate, "events.v1.TaskCreate", nul)

	good := uuid.NewString()
	_, err = env.Deps.Broker.Publish(ctx, events.TaskCreate, &eventsv1.TaskCreate{
		TaskId: good, AuthorId: worker.ID.String(), Description: "fine", Fee: -10, Reward: 20,
	})
	require.NoError(t, err)
	eventually(t, "the consumer keeps going after bad messages", func() bool {
		return count(t, env, "SELECT count(*) FROM tasks WHERE id = $1", good) == 1
	})

	var reasons []string
	eventually(t, "four messages are dead-lettered", func() bool {
		d, err := env.Deps.Broker.Get(ctx, broker.DeadLetterQueue(env.Queue))
		require.NoError(t, err)
		if d != nil {
			reasons = append(reasons, d.DeadLetterReason())
		}
		return len(reasons) == 4
	})
	// Handlers run concurrently, so the order of dead letters is not the order sent.
	all := strings.Join(reasons, "\n")
	require.Contains(t, all, "decode", "the undecodable body")
	require.Contains(t, all, "fee", "the payload that fails validation names the field")
	require.Contains(t, all, "events.v1.TaskCreate", "the payload whose type does not match its routing key")
	require.Contains(t, all, "description: must contain a visible character and no control characters", "the description with a NUL byte fails validation, not the database")
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks"), "nothing of the bad messages was written")
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log"))
}

func TestRejectedEventsWriteNoMoney(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	other := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := context.Background()

	created, err := env.Tasks.CreateTask(manager.Context(ctx), &tasksv1.CreateTaskRequest{Description: "contested", Wait: true})
	require.NoError(t, err)
	holder, outsider := worker, other
	if created.GetTask().GetAssignedTo() == other.ID.String() {
		holder, outsider = other, worker
	}
	// The outsider's completion goes straight to the queue, past the API's check.
	eventID, err := env.Deps.Broker.Publish(ctx, events.TaskComplete, &eventsv1.TaskComplete{TaskId: created.GetId(), WorkerId: outsider.ID.String()})
	require.NoError(t, err)
	eventually(t, "the completion is processed", func() bool {
		return count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = $1", eventID) == 1
	})
	var outcome, reason string
	require.NoError(t, env.Pool.QueryRow(ctx, "SELECT outcome, reason FROM processed_events WHERE event_id = $1", eventID).Scan(&outcome, &reason))
	require.Equal(t, "rejected", outcome)
	require.Contains(t, reason, "someone else")
	require.Zero(t, count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'reward'"), "no reward for a completion that did not happen")
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks WHERE status = 'in_progress' AND assignee_id = $1", holder.ID))
}

// TestEventsWaitForARunningClose holds the daily close's lock as dailyaccounting does
// while it closes a day, and shows that no event is applied (and so no money row is
// stamped with a day being closed) until the close is over.
func TestEventsWaitForARunningClose(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	ctx := context.Background()

	tx, err := env.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	_, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock(daily_close_lock_key())")
	require.NoError(t, err)

	taskID := uuid.NewString()
	_, err = env.Deps.Broker.Publish(ctx, events.TaskCreate, &eventsv1.TaskCreate{
		TaskId: taskID, AuthorId: worker.ID.String(), Description: "during a close", Fee: -10, Reward: 20,
	})
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	require.Zero(t, count(t, env, "SELECT count(*) FROM tasks WHERE id = $1", taskID), "the event waits while the close runs")

	require.NoError(t, tx.Commit(ctx))
	eventually(t, "the event is applied once the close is over", func() bool {
		return count(t, env, "SELECT count(*) FROM tasks WHERE id = $1", taskID) == 1
	})
}

// TestDuplicateTaskCreateIsRejectedAtOnce: a second task_create for a task id that is
// taken (another event id) is recorded as rejected in one go, not retried, and writes no
// second fee.
func TestDuplicateTaskCreateIsRejectedAtOnce(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	ctx := context.Background()

	taskID := uuid.NewString()
	create := func(description string) string {
		id, err := env.Deps.Broker.Publish(ctx, events.TaskCreate, &eventsv1.TaskCreate{
			TaskId: taskID, AuthorId: worker.ID.String(), Description: description, Fee: -12, Reward: 25,
		})
		require.NoError(t, err)
		return id
	}
	first := create("the original")
	eventually(t, "the first create is applied", func() bool {
		return count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = $1 AND outcome = 'applied'", first) == 1
	})
	second := create("a copy under another event id")
	eventually(t, "the second create is rejected", func() bool {
		return count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = $1 AND outcome = 'rejected' AND reason LIKE '%exists%'", second) == 1
	})
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log WHERE task_id = $1", taskID), "one fee")
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks WHERE id = $1 AND description = 'the original'", taskID))
	n, err := env.Deps.Broker.QueueDepth(ctx, broker.DeadLetterQueue(env.Queue))
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestMoneyAfterACloseGoesToTheFirstOpenDay: once today is closed (early, by an
// operator), events applied afterwards write their money on tomorrow, never on the
// closed day.
func TestMoneyAfterACloseGoesToTheFirstOpenDay(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	ctx := context.Background()
	today := bizday.Of(time.Now(), env.Config.BusinessTZ)
	_, err := env.Pool.Exec(ctx, "INSERT INTO closed_days (business_date, workers) VALUES ($1, 1)", today)
	require.NoError(t, err)

	created, err := env.Tasks.CreateTask(worker.Context(ctx), &tasksv1.CreateTaskRequest{Description: "after the close", Wait: true})
	require.NoError(t, err)
	_, err = env.Tasks.CompleteTask(worker.Context(ctx), &tasksv1.CompleteTaskRequest{Id: created.GetId(), Wait: true})
	require.NoError(t, err)

	var days []time.Time
	rows, err := env.Pool.Query(ctx, "SELECT business_date FROM audit_log WHERE task_id = $1 ORDER BY id", created.GetId())
	require.NoError(t, err)
	days, err = pgx.CollectRows(rows, pgx.RowTo[time.Time])
	require.NoError(t, err)
	require.Equal(t, []time.Time{bizday.Next(today), bizday.Next(today)}, days, "the fee and the reward are on tomorrow")
}

// TestATaskAssignNamingTheHolderChargesNothing: a task_assign that names the worker who
// holds the task already (the API refuses it, but one may be in flight when the task
// changes hands, or be forged) is rejected and writes no fee.
func TestATaskAssignNamingTheHolderChargesNothing(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := context.Background()
	created, err := env.Tasks.CreateTask(manager.Context(ctx), &tasksv1.CreateTaskRequest{Description: "held", Wait: true})
	require.NoError(t, err)
	var ids []string
	for range 3 {
		id, err := env.Deps.Broker.Publish(ctx, events.TaskAssign, &eventsv1.TaskAssign{
			TaskId: created.GetId(), AssigneeId: worker.ID.String(), ActorId: manager.ID.String(),
		})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	eventually(t, "the assigns are settled", func() bool {
		return count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = ANY($1) AND outcome = 'rejected' AND reason LIKE '%already%'", ids) == 3
	})
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM audit_log WHERE task_id = $1", created.GetId()), "the creation's fee only")
}
