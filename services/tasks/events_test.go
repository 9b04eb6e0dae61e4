package tasks_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	authv1 "github.com/ates/ates/gen/auth/v1"
	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestCreatePublishesTheEvent reads the event a REST create publishes straight from
// taskhandler's queue: routing key, properties, headers with the caller's trace context,
// and the priced payload.
func TestCreatePublishesTheEvent(t *testing.T) {
	t.Parallel()
	env := taskstest.Start(t, taskstest.Options{NoTaskhandler: true})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	author := env.NewUser(t, authv1.Role_ROLE_ACCOUNTANT)
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	req, err := http.NewRequest("POST", "http://"+env.TasksHTTP+"/v1/task", strings.NewReader(`{"description":"traced"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+author.Token)
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	d, err := env.Deps.Broker.Get(context.Background(), env.Queue)
	require.NoError(t, err)
	require.NotNil(t, d, "the event is in the queue")
	require.Equal(t, events.TaskCreate, d.RoutingKey)
	require.Equal(t, "events.v1.TaskCreate", d.Type)
	require.Equal(t, broker.ContentTypeProtobuf, d.ContentType)
	require.NoError(t, uuid.Validate(d.EventID))
	require.False(t, d.Timestamp.IsZero())
	require.Equal(t, "v1", d.Headers[broker.HeaderSchemaVersion])
	require.Equal(t, traceparent, d.Headers[broker.HeaderTraceparent], "the caller's trace context travels with the event")

	var ev eventsv1.TaskCreate
	require.NoError(t, d.Unmarshal(&ev))
	require.Equal(t, author.ID.String(), ev.GetAuthorId())
	require.Equal(t, "traced", ev.GetDescription())
	require.GreaterOrEqual(t, ev.GetFee(), int64(-20))
	require.LessOrEqual(t, ev.GetFee(), int64(-10))
	require.GreaterOrEqual(t, ev.GetReward(), int64(20))
	require.LessOrEqual(t, ev.GetReward(), int64(40))
}
