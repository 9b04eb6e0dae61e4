package events_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/events/eventstest"
)

// TestEachServiceMayDoOnlyWhatItDoes connects as each service's own broker user and shows
// that the broker lets it do its job and refuses anything else: mailsender cannot publish
// to the events exchange at all, and tasks cannot publish another producer's event.
func TestEachServiceMayDoOnlyWhatItDoes(t *testing.T) {
	t.Parallel()
	exchange, queues := brokertest.Names(t, "taskhandler", "mailsender")
	names := events.Names{Exchange: exchange, TaskhandlerQueue: queues[0], MailsenderQueue: queues[1]}
	urls := eventstest.ServiceUsers(t, names)
	dial := func(svc string) *broker.Conn {
		return brokertest.DialWith(t, exchange, func(c *broker.Config) {
			c.URL, c.AppID, c.Logger = urls[svc], svc, slog.New(slog.NewTextHandler(t.Output(), nil))
		})
	}
	ctx := t.Context()
	create := &eventsv1.TaskCreate{TaskId: uuid.NewString(), AuthorId: uuid.NewString(), Description: "d", Fee: -10, Reward: 20}
	mail := &eventsv1.SendEmail{UserId: uuid.NewString(), Email: "w@example.com", Name: "W", Date: "2025-01-02"}

	tasks := dial(events.Tasks)
	// What the tasks API does at start and on every write: check the queue exists (it
	// may not declare it), read its depth, publish task events.
	require.NoError(t, tasks.DeclareQueue(ctx, events.TaskhandlerQueueSpec(names.TaskhandlerQueue)))
	_, err := tasks.QueueDepth(ctx, names.TaskhandlerQueue)
	require.NoError(t, err)
	_, err = tasks.Publish(ctx, events.TaskCreate, create)
	require.NoError(t, err)
	_, err = tasks.Publish(ctx, events.SendEmail, mail)
	require.Error(t, err)
	require.True(t, broker.IsAccessRefused(err), "tasks may not publish send_email: %v", err)

	daily := dial(events.Dailyaccounting)
	require.NoError(t, daily.DeclareQueue(ctx, events.MailsenderQueueSpec(names.MailsenderQueue)))
	_, err = daily.Publish(ctx, events.SendEmail, mail)
	require.NoError(t, err)
	_, err = daily.Publish(ctx, events.TaskComplete, &eventsv1.TaskComplete{TaskId: uuid.NewString(), WorkerId: uuid.NewString()})
	require.True(t, broker.IsAccessRefused(err), "dailyaccounting may not publish task events: %v", err)

	mailsender := dial(events.Mailsender)
	require.NoError(t, mailsender.DeclareQueue(ctx, events.MailsenderQueueSpec(names.MailsenderQueue)))
	for _, key := range []string{events.TaskComplete, events.SendEmail} {
		_, err = mailsender.Publish(ctx, key, create)
		require.True(t, broker.IsAccessRefused(err), "mailsender may not publish %s to the events exchange: %v", key, err)
	}
	// Nor read taskhandler's queue.
	_, err = mailsender.Get(ctx, names.TaskhandlerQueue)
	require.True(t, broker.IsAccessRefused(err), "mailsender may not read taskhandler's queue: %v", err)
	d, err := mailsender.Get(ctx, names.MailsenderQueue)
	require.NoError(t, err)
	require.NotNil(t, d, "mailsender reads its own queue")

	taskhandler := dial(events.Taskhandler)
	require.NoError(t, taskhandler.DeclareQueue(ctx, events.TaskhandlerQueueSpec(names.TaskhandlerQueue)))
	require.Eventually(t, func() bool {
		d, err := taskhandler.Get(ctx, names.TaskhandlerQueue)
		require.NoError(t, err)
		return d != nil
	}, 10*time.Second, 20*time.Millisecond, "taskhandler reads its own queue")
	_, err = taskhandler.Publish(ctx, events.TaskCreate, create)
	require.True(t, broker.IsAccessRefused(err), "taskhandler may not publish task events: %v", err)
}
