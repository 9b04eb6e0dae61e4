package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/broker/brokertest"
)

// TestDeadLetterCommand walks an operator through a dead-letter queue: list it, show one
// message, replay one once the bug is fixed (it is applied and leaves the queue), refuse
// an unconfirmed purge, purge one, then the rest. Not parallel: it sets the environment
// the command reads.
func TestDeadLetterCommand(t *testing.T) {
	exchange, queues := brokertest.Names(t, "dlq")
	queue := queues[0]
	t.Setenv("ATES_AMQP_URL", broker.TestURL())
	t.Setenv("ATES_AMQP_EXCHANGE", exchange)
	c := brokertest.Dial(t, exchange)
	const key = "task_complete.v1"
	require.NoError(t, c.DeclareQueue(t.Context(), broker.QueueSpec{Name: queue, RoutingKeys: []string{key}}))

	var broken atomic.Bool
	broken.Store(true)
	applied := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(ctx, broker.ConsumerConfig{
			Queue: queue, Prefetch: 1, Timeout: 5 * time.Second,
			Routes: []broker.Route{broker.On(key, func(_ context.Context, ev broker.Event[*eventsv1.TaskComplete]) error {
				if broken.Load() {
					return broker.Permanent(errors.New("bug 42: cannot apply"))
				}
				applied <- ev.ID.String()
				return nil
			})},
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	var ids, tasks []string
	for range 3 {
		task := uuid.NewString()
		id, err := c.Publish(t.Context(), key, &eventsv1.TaskComplete{TaskId: task, WorkerId: uuid.NewString()})
		require.NoError(t, err)
		ids, tasks = append(ids, id), append(tasks, task)
	}
	dead := broker.DeadLetterQueue(queue)
	depth := func() int {
		n, err := c.QueueDepth(t.Context(), dead)
		require.NoError(t, err)
		return n
	}
	// Messages a command left alone return to the queue once its channel closes, which
	// RabbitMQ finishes a moment after the command returned.
	requireDepth := func(n int, msg string) {
		t.Helper()
		require.Eventually(t, func() bool { return depth() == n }, 10*time.Second, 20*time.Millisecond, msg)
	}
	requireDepth(3, "all three are dead-lettered")

	out := ates(t, "", "dlq", "list", "--queue", queue)
	for _, id := range ids {
		require.Contains(t, out, id)
	}
	require.Contains(t, out, "bug 42")
	require.Contains(t, out, key)
	require.Contains(t, out, "events.v1.TaskComplete")
	requireDepth(3, "listing takes nothing off the queue")

	out = ates(t, "", "dlq", "show", "--queue", dead, "--id", ids[0])
	require.Contains(t, out, tasks[0], "the payload is decoded")
	require.Contains(t, out, "bug 42")
	requireDepth(3, "showing takes nothing off the queue")

	broken.Store(false) // the bug is fixed
	out = ates(t, "", "dlq", "replay", "--queue", queue, "--id", ids[0])
	require.Contains(t, out, "1 replayed")
	select {
	case got := <-applied:
		require.Equal(t, ids[0], got, "replayed under its original event id")
	case <-time.After(10 * time.Second):
		t.Fatal("the replayed event was not applied")
	}
	requireDepth(2, "the replayed letter left the queue")

	var stdout bytes.Buffer
	err := run(t.Context(), []string{"dlq", "purge", "--queue", queue}, strings.NewReader("no\n"), &stdout)
	require.ErrorContains(t, err, "not confirmed")
	requireDepth(2, "an unconfirmed purge deletes nothing")

	require.Contains(t, ates(t, "", "dlq", "purge", "--queue", queue, "--id", ids[1], "--yes"), "1 deleted")
	requireDepth(1, "one purged by id")
	require.Contains(t, ates(t, "yes\n", "dlq", "purge", "--queue", queue), "1 deleted")
	requireDepth(0, "the rest purged")
	require.Empty(t, applied, "purged letters are not applied")
}

// ates runs the command with stdin and returns what it printed; it must succeed.
func ates(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	var stdout bytes.Buffer
	require.NoError(t, run(t.Context(), args, strings.NewReader(stdin), &stdout), "ates %s", strings.Join(args, " "))
	return stdout.String()
}

// TestDeadLettersCannotWriteToTheTerminal: everything `ates dlq list` and `show` print
// of a dead letter comes from the message, and anyone who may publish can get a message
// into a dead-letter queue (a forged event is dead-lettered with its properties; any
// consumer's user can write to every dead-letter queue directly). Control characters,
// such as a terminal's escape sequences that rewrite the screen the operator reads, are
// printed escaped.
func TestDeadLettersCannotWriteToTheTerminal(t *testing.T) {
	t.Parallel()
	const esc = "\x1b[2J\x1b]0;owned\a\r"
	l := broker.DeadLetter{
		Delivery: broker.Delivery{
			EventID: "id" + esc, Type: "type" + esc, RoutingKey: "key" + esc, AppID: "app" + esc,
			Headers: map[string]any{"h" + esc: "v" + esc, "bytes": []byte(esc)},
			Body:    []byte(esc),
		},
		Reason: "reason" + esc,
	}
	body, err := proto.Marshal(&eventsv1.TaskCreate{Description: "description" + esc})
	require.NoError(t, err)
	decoded := broker.DeadLetter{Delivery: broker.Delivery{Type: "events.v1.TaskCreate", Body: body}}
	var list, show bytes.Buffer
	require.NoError(t, printDeadLetters(&list, "q.dead", []broker.DeadLetter{l, decoded}))
	require.NoError(t, showDeadLetter(&show, l))
	require.NoError(t, showDeadLetter(&show, decoded))
	for name, out := range map[string]string{"list": list.String(), "show": show.String()} {
		require.NotContains(t, out, "\x1b", "%s prints an escape character", name)
		require.NotContains(t, out, "\a", name)
		require.NotContains(t, out, "\r", name)
		require.Contains(t, out, "owned", "%s still shows what the message says", name)
	}
}
