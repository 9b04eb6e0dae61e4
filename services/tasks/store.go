package tasks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/taskproto"
	"github.com/ates/ates/services/tasks/internal/tasksdb"
)

// workerSeenFor is how long a create trusts that an active worker exists once it has
// seen one, without asking the database again.
const workerSeenFor = time.Second

// store reads tasks and users; the API never writes business tables.
type store struct {
	q *tasksdb.Queries
	// workerSeen is when a create last found an active worker (Unix nanoseconds).
	workerSeen atomic.Int64
}

func newStore(pool *pgxpool.Pool) *store { return &store{q: tasksdb.New(pool)} }

// namedTask is a task row with its assignee's name: what the API shows of a task.
type namedTask struct {
	tasksdb.Task
	assigneeName string
}

func (s *store) task(ctx context.Context, id uuid.UUID) (namedTask, error) {
	r, err := s.q.TaskGet(ctx, id)
	if err != nil {
		return namedTask{}, fmt.Errorf("read task %s: %w", id, pgutil.Translate(err))
	}
	return namedTask{r.Task, r.AssigneeName}, nil
}

// anyActiveWorker reports whether there is a worker tasks can be assigned to. A yes is
// reused for workerSeenFor: it is only the early answer. taskhandler assigns, and
// rejects a task when no worker is left by then; a caller with wait gets that
// rejection, the same FailedPrecondition.
func (s *store) anyActiveWorker(ctx context.Context) (bool, error) {
	if seen := s.workerSeen.Load(); seen != 0 && time.Since(time.Unix(0, seen)) < workerSeenFor {
		return true, nil
	}
	ok, err := s.q.UserActiveWorkerExists(ctx)
	if err != nil {
		return false, fmt.Errorf("look for a worker: %w", err)
	}
	if ok {
		s.workerSeen.Store(time.Now().UnixNano())
	}
	return ok, nil
}

// isActiveWorker reports whether id names an active worker; pgutil.ErrNotFound if no user.
func (s *store) isActiveWorker(ctx context.Context, id uuid.UUID) (bool, error) {
	u, err := s.q.UserGetRole(ctx, id)
	if err != nil {
		return false, fmt.Errorf("read user %s: %w", id, pgutil.Translate(err))
	}
	return u.Role == tasksdb.UserRoleWorker && u.Active, nil
}

// openTaskIDs returns up to n open task ids after the cursor, in id order.
func (s *store) openTaskIDs(ctx context.Context, after uuid.UUID, n int) ([]uuid.UUID, error) {
	ids, err := s.q.TaskListOpenIDs(ctx, tasksdb.TaskListOpenIDsParams{AfterID: after, BatchSize: int32(n)}) //nolint:gosec // G115: n is the assigner's batch size, a small constant
	if err != nil {
		return nil, fmt.Errorf("list open tasks: %w", err)
	}
	return ids, nil
}

// outcome reads what taskhandler made of an event; pgutil.ErrNotFound while it has not.
func (s *store) outcome(ctx context.Context, eventID uuid.UUID) (tasksdb.ProcessedEventGetRow, error) {
	row, err := s.q.ProcessedEventGet(ctx, tasksdb.ProcessedEventGetParams{Consumer: events.TaskhandlerConsumer, EventID: eventID})
	return row, pgutil.Translate(err)
}

// movedBy counts the tasks the given reassign events moved (their fee rows).
func (s *store) movedBy(ctx context.Context, eventIDs []uuid.UUID) (int64, error) {
	n, err := s.q.ProcessedEventCountFees(ctx, eventIDs)
	if err != nil {
		return 0, fmt.Errorf("count reassigned tasks: %w", err)
	}
	return n, nil
}

// listFilter is a ListTasks call after access rules applied.
type listFilter struct {
	assignee, author uuid.NullUUID
	status           tasksv1.TaskStatus
	after            *cursor
	size             int
}

// list returns one page and the cursor of the next, if there is one.
func (s *store) list(ctx context.Context, f listFilter) ([]namedTask, *cursor, error) {
	p := tasksdb.TaskListParams{AssigneeID: f.assignee, AuthorID: f.author, PageSize: int32(f.size + 1)} //nolint:gosec // G115: the page size is validated to at most the API's maximum
	if f.status != tasksv1.TaskStatus_TASK_STATUS_UNSPECIFIED {
		p.Status = tasksdb.NullTaskStatus{TaskStatus: taskproto.StatusLabel[tasksdb.TaskStatus](f.status), Valid: true}
	}
	if f.after != nil {
		p.AfterCreatedAt = pgtype.Timestamptz{Time: f.after.createdAt, Valid: true}
		p.AfterID = uuid.NullUUID{UUID: f.after.id, Valid: true}
	}
	rows, err := s.q.TaskList(ctx, p)
	if err != nil {
		return nil, nil, fmt.Errorf("list tasks: %w", err)
	}
	tasks := make([]namedTask, len(rows))
	for i, r := range rows {
		tasks[i] = namedTask{r.Task, r.AssigneeName}
	}
	if len(tasks) <= f.size {
		return tasks, nil, nil
	}
	tasks = tasks[:f.size]
	last := tasks[len(tasks)-1]
	return tasks, &cursor{createdAt: last.CreatedAt, id: last.ID}, nil
}

// cursor is the position after the last task of a page: newest first by (created_at, id).
type cursor struct {
	createdAt time.Time
	id        uuid.UUID
}

var errBadPageToken = errors.New("not a token this API gave out")

func (c cursor) token() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.createdAt.UTC().Format(time.RFC3339Nano) + "|" + c.id.String()))
}

func parseCursor(token string) (*cursor, error) {
	if token == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, errBadPageToken
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return nil, errBadPageToken
	}
	c := &cursor{}
	if c.createdAt, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return nil, errBadPageToken
	}
	if c.id, err = uuid.Parse(id); err != nil {
		return nil, errBadPageToken
	}
	return c, nil
}
