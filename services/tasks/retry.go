package tasks

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/ates/ates/services/internal/idempotency"
	"github.com/ates/ates/services/internal/pgutil"
)

// retryKey is what makes a write call safe to retry: with the client's request_id, the
// call's ids are derived from (caller, method, request_id), so a retry publishes the
// same event (taskhandler applies an event id once) about the same task; without one,
// every call gets new ids, as before request ids existed.
type retryKey struct {
	caller    uuid.UUID
	method    string
	requestID uuid.UUID
	given     bool
}

// newRetryKey reads the request_id of a call by caller to method. protovalidate has
// checked its shape already.
func newRetryKey(caller uuid.UUID, method, requestID string) (retryKey, error) {
	k := retryKey{caller: caller, method: method}
	if requestID == "" {
		return k, nil
	}
	id, err := parseID("request_id", requestID)
	if err != nil {
		return k, err
	}
	k.requestID, k.given = id, true
	return k, nil
}

// id is the id of what the call makes ("task", "operation", or "event" followed by the
// task the event is about, so that a request id reused for another task is another
// call, not a replay of the first).
func (k retryKey) id(what string) (uuid.UUID, error) {
	if !k.given {
		id, err := uuid.NewV7()
		if err != nil {
			return uuid.Nil, fmt.Errorf("new id: %w", err)
		}
		return id, nil
	}
	return idempotency.ID(k.caller, k.method, k.requestID, what), nil
}

// eventAbout is the id of the call's event about task.
func (k retryKey) eventAbout(task uuid.UUID) (uuid.UUID, error) {
	return k.id("event " + task.String())
}

// applied reports whether taskhandler has already applied (or rejected) the event of a
// call with a request id: a retry then publishes nothing and answers from the recorded
// outcome, which also spares it checks the first call passed but the present state may
// not (the task is complete now, the workers have changed).
func (s *Server) applied(ctx context.Context, k retryKey, eventID uuid.UUID) (bool, error) {
	if !k.given {
		return false, nil
	}
	_, err := s.store.outcome(ctx, eventID)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, pgutil.ErrNotFound):
		return false, nil
	}
	return false, s.toStatus(ctx, fmt.Errorf("read event outcome: %w", err))
}
