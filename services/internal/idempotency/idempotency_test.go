package idempotency_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/idempotency"
)

func TestID(t *testing.T) {
	t.Parallel()
	caller := uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	request := uuid.MustParse("9b2f0e4c-1d3a-4b5c-8e6f-7a8b9c0d1e2f")
	const method = "/tasks.v1.TaskService/CreateTask"

	id := idempotency.ID(caller, method, request, "event")
	require.Equal(t, uuid.Version(5), id.Version())
	require.Equal(t, id, idempotency.ID(caller, method, request, "event"), "a retry derives the same id")
	// Pinned (computed independently): a change would make retries across a deploy act twice.
	require.Equal(t, "280ab635-77e1-56bc-b33e-4c5d929f0fcc", id.String())

	others := map[string]uuid.UUID{
		"another caller":     idempotency.ID(uuid.New(), method, request, "event"),
		"another method":     idempotency.ID(caller, "/tasks.v1.TaskService/CompleteTask", request, "event"),
		"another request id": idempotency.ID(caller, method, uuid.New(), "event"),
		"another thing":      idempotency.ID(caller, method, request, "task"),
		"a shifted boundary": idempotency.ID(caller, method+"\x00e", request, "vent"),
	}
	for name, other := range others {
		require.NotEqual(t, id, other, name)
	}
}

func TestSetID(t *testing.T) {
	t.Parallel()
	op := uuid.New()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	id := idempotency.SetID(op, []uuid.UUID{a, b})
	require.Equal(t, uuid.Version(5), id.Version())
	require.Equal(t, id, idempotency.SetID(op, []uuid.UUID{b, a}), "the order does not matter")
	require.NotEqual(t, id, idempotency.SetID(op, []uuid.UUID{a, b, c}), "another set")
	require.NotEqual(t, id, idempotency.SetID(op, []uuid.UUID{a}), "a smaller set")
	require.NotEqual(t, id, idempotency.SetID(uuid.New(), []uuid.UUID{a, b}), "another parent")
}
