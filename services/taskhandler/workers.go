package taskhandler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ates/ates/services/taskhandler/internal/taskhandlerdb"
)

// workerList is the active workers tasks are assigned to at random, read at most once
// per ttl. Picking from a list in memory costs the same with 10 workers or 100,000,
// where ORDER BY random() in every create sorted them all. A stale list is safe: the
// statement that assigns checks the picked worker is still an active worker, and the
// caller reads the list afresh when it is not; a worker added meanwhile is picked once
// the list is read again.
type workerList struct {
	ttl    time.Duration
	mu     sync.Mutex
	ids    []uuid.UUID
	readAt time.Time
}

// pick returns an active worker at random, uuid.Nil when there is none; fresh reads
// the list first whatever its age.
func (l *workerList) pick(ctx context.Context, q *taskhandlerdb.Queries, fresh bool) (uuid.UUID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if fresh || l.readAt.IsZero() || time.Since(l.readAt) >= l.ttl {
		ids, err := q.WorkersActive(ctx)
		if err != nil {
			return uuid.Nil, fmt.Errorf("read the active workers: %w", err)
		}
		l.ids, l.readAt = ids, time.Now()
	}
	if len(l.ids) == 0 {
		return uuid.Nil, nil
	}
	return l.ids[rand.IntN(len(l.ids))], nil //nolint:gosec // G404: the draw must be fair, not secret: math/rand/v2's ChaCha8 is seeded from the OS and no caller sees or steers it
}
