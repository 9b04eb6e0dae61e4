package tasks

import (
	"sync"
	"time"

	"github.com/google/uuid"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/ratelimit"
)

// quotas are the tasks API's write limits per user (docs/security-limits.md): every
// task created charges a worker a fee, and every reassign-all charges one to the holder
// of every open task, so a caller who repeats them without end costs other people money.
type quotas struct {
	metrics *ratelimit.Metrics
	// create limits CreateTask for the roles in createRoles.
	create      *ratelimit.Limiter
	createRoles map[authv1.Role]bool
	// reassign caps each caller's reassign-all calls a minute.
	reassign *ratelimit.Limiter

	mu          sync.Mutex
	reassigning map[uuid.UUID]bool // callers with a reassign-all running
}

func newQuotas(cfg config.Limits, m *ratelimit.Metrics) *quotas {
	q := &quotas{
		metrics:     m,
		create:      m.New("create_task_per_user", "tasks created", ratelimit.Limit(cfg.CreateTaskPerUser)),
		createRoles: map[authv1.Role]bool{},
		reassigning: map[uuid.UUID]bool{},
	}
	for _, role := range cfg.CreateTaskRoles {
		q.createRoles[authn.ParseRole(role)] = true
	}
	if n := cfg.ReassignPerMinute; n > 0 {
		q.reassign = m.New("reassign_all_per_user", "reassign-all calls", ratelimit.Limit{Burst: n, Every: time.Minute / time.Duration(n)})
	}
	return q
}

// allowCreate takes one task from u's quota, if u's role has one.
func (q *quotas) allowCreate(u authn.User) error {
	if !q.createRoles[u.Role] {
		return nil
	}
	return q.create.Allow(u.ID.String())
}

// reassignRetry is the Retry-After of a reassign-all refused because the caller's
// previous one is still running: about how long one takes.
const reassignRetry = time.Second

// startReassign admits a reassign-all by u: one at a time per caller, and no more than
// the cap a minute. done ends it.
func (q *quotas) startReassign(u authn.User) (done func(), err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reassigning[u.ID] {
		return nil, q.metrics.Refuse("reassign_all_running",
			"your previous reassign-all is still running; try again once it has answered", reassignRetry)
	}
	if err := q.reassign.Allow(u.ID.String()); err != nil {
		return nil, err
	}
	q.reassigning[u.ID] = true
	return func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		delete(q.reassigning, u.ID)
	}, nil
}
