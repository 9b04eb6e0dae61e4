package taskhandler_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/ates/ates/gen/auth/v1"
	eventsv1 "github.com/ates/ates/gen/events/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/events/eventstest"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestAForgedCompletionMovesNoMoney: someone who has the tasks service's broker password
// (but not its signing key) publishes a task_complete for another worker's task, naming
// that worker, which no actor check can tell from the API's own. It is dead-lettered
// unread, and no money moves; with the mailsender's password the broker refuses the
// publish to the events exchange outright, and a copy through the dead-letter exchange
// (which that user may write to) is dead-lettered too.
func TestAForgedCompletionMovesNoMoney(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{})
	_, other := brokertest.Names(t, "mailsender")
	urls := eventstest.ServiceUsers(t, events.Names{Exchange: env.Config.Exchange, TaskhandlerQueue: env.Queue, MailsenderQueue: other[0]})
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := env.NewUser(t, authv1.Role_ROLE_MANAGER)
	ctx := context.Background()

	created, err := env.Tasks.CreateTask(manager.Context(ctx), &tasksv1.CreateTaskRequest{Description: "someone else's", Wait: true})
	require.NoError(t, err)
	require.Equal(t, worker.ID.String(), created.GetTask().GetAssignedTo())
	balance := func() int64 {
		return sum(t, env, "SELECT coalesce(sum(amount), 0) FROM audit_log WHERE user_id = '"+worker.ID.String()+"'")
	}
	before := balance()
	require.Negative(t, before, "the worker paid the assignment fee")

	forger := func(svc string, signer *broker.Keyring) *broker.Conn {
		return brokertest.DialWith(t, env.Config.Exchange, func(c *broker.Config) {
			c.URL, c.AppID, c.Signer, c.Logger = urls[svc], "tasks", signer, slog.New(slog.DiscardHandler)
		})
	}
	complete := &eventsv1.TaskComplete{TaskId: created.GetId(), WorkerId: worker.ID.String()}
	otherKey, err := broker.ParseKeyring("dev1:a-key-the-forger-made-up-himself")
	require.NoError(t, err)
	var forged []string
	for _, signer := range []*broker.Keyring{nil, otherKey} {
		id, err := forger(events.Tasks, signer).Publish(ctx, events.TaskComplete, complete)
		require.NoError(t, err, "the tasks user may publish task_complete")
		forged = append(forged, id)
	}
	_, err = forger(events.Mailsender, nil).Publish(ctx, events.TaskComplete, complete)
	require.True(t, broker.IsAccessRefused(err), "the mailsender user may not publish to the events exchange: %v", err)

	// The mailsender user may write to the dead-letter exchange, which is direct (no
	// topic permissions) and reaches taskhandler's queue under its name: the way in past
	// the broker's permissions, with the routing key in the header retry copies carry.
	body, err := proto.Marshal(complete)
	require.NoError(t, err)
	viaDLX := amqp.Publishing{
		MessageId: uuid.NewString(), Type: "events.v1.TaskComplete", AppId: "tasks", Body: body,
		Headers: amqp.Table{"x-ates-routing-key": events.TaskComplete},
	}
	otherKey.Sign(&viaDLX)
	mconn, err := amqp.Dial(urls[events.Mailsender])
	require.NoError(t, err)
	defer mconn.Close()
	mch, err := mconn.Channel()
	require.NoError(t, err)
	require.NoError(t, mch.Confirm(false))
	conf, err := mch.PublishWithDeferredConfirm(env.Config.Exchange+".dlx", env.Queue, true, false, viaDLX)
	require.NoError(t, err)
	require.True(t, conf.Wait(), "the mailsender user may write to the dead-letter exchange")
	forged = append(forged, viaDLX.MessageId)

	dead := map[string]string{}
	eventually(t, "every forged completion is dead-lettered", func() bool {
		d, err := env.Deps.Broker.Get(ctx, broker.DeadLetterQueue(env.Queue))
		require.NoError(t, err)
		if d != nil {
			dead[d.EventID] = d.DeadLetterReason()
		}
		return len(dead) == len(forged)
	})
	for _, id := range forged {
		require.Contains(t, dead[id], "not signed by its trusted producer")
	}
	require.Equal(t, before, balance(), "no reward for a forged completion")
	require.Zero(t, count(t, env, "SELECT count(*) FROM audit_log WHERE kind = 'reward'"))
	require.Equal(t, 1, count(t, env, "SELECT count(*) FROM tasks WHERE id = $1 AND status = 'in_progress'", created.GetId()))
	require.Zero(t, count(t, env, "SELECT count(*) FROM processed_events WHERE event_id = ANY($1)", forged), "nothing of them was applied")

	// The worker's own completion, through the API, still pays.
	_, err = env.Tasks.CompleteTask(worker.Context(ctx), &tasksv1.CompleteTaskRequest{Id: created.GetId(), Wait: true})
	require.NoError(t, err)
	require.Greater(t, balance(), before)
}
