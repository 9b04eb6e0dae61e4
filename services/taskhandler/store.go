package taskhandler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/ledger"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/taskhandler/internal/taskhandlerdb"
)

// rejection is a business reason an event changes nothing: it is recorded as the event's
// outcome (for a waiting caller) and acknowledged, never retried.
type rejection struct{ reason string }

func (r *rejection) Error() string { return r.reason }

func reject(format string, args ...any) error {
	return &rejection{reason: fmt.Sprintf(format, args...)}
}

// Outcome says what applying one event did.
type Outcome string

// The outcomes of an event.
const (
	Applied   Outcome = "applied"
	Rejected  Outcome = "rejected"
	Duplicate Outcome = "duplicate"
)

// store applies events to tasks and the audit log. Each event is applied together with
// the processed-events row that makes redelivery harmless; the batcher puts many events
// in one transaction (see batch.go).
type store struct {
	pool    *pgxpool.Pool
	loc     *time.Location
	now     func() time.Time
	batch   *batcher // nil: each event in a transaction of its own
	workers *workerList
}

// change is what one event does to the database: fn runs inside the transaction that
// claims the event. It returns a rejection (reject) before it writes anything, or an
// error that aborts the transaction.
type change func(ctx context.Context, q *taskhandlerdb.Queries, at stamp) error

// stamp is when an event is applied: the instant, the business day its money rows are
// written to (the first open day, see ledger.FirstOpen), and the transaction's money
// rows, written together when its events are done.
type stamp struct {
	now   time.Time
	day   time.Time
	money *[]taskhandlerdb.LogInsertManyParams
}

// result is what applying one event did.
type result struct {
	outcome Outcome
	reason  string
	err     error
}

// apply applies the event id: through the batcher when the consumer runs one, alone
// otherwise.
func (s *store) apply(ctx context.Context, id uuid.UUID, fn change) (Outcome, string, error) {
	var r result
	if s.batch != nil {
		r = s.batch.submit(ctx, id, fn)
	} else {
		r = s.alone(ctx, id, fn)
	}
	return r.outcome, r.reason, r.err
}

// alone applies one event in a transaction of its own. A rejection is recorded as the
// outcome and committed. An integrity error that says the event itself is wrong (it
// names a row that does not exist, or creates a task whose id is taken) aborts that
// transaction, so it is recorded as a rejection in a second one: acknowledged at once,
// not retried. Any other integrity error (a check the data breaks) is returned: a
// message that can never be applied, for the dead-letter queue, where an operator sees
// it.
func (s *store) alone(ctx context.Context, id uuid.UUID, fn change) result {
	rs, _, err := s.tx(ctx, []pending{{id: id, fn: fn}})
	var why string
	switch {
	case err == nil:
		return rs[0]
	case pgutil.ConstraintOf(err, "23503") != "":
		why = fmt.Sprintf("the event refers to a row that does not exist (%s)", pgutil.ConstraintOf(err, "23503"))
	case pgutil.ConstraintOf(err, "23505") == "tasks_pkey":
		why = "a task with this id exists already"
	default:
		return result{err: err}
	}
	rs, _, err = s.tx(ctx, []pending{{id: id, fn: func(context.Context, *taskhandlerdb.Queries, stamp) error {
		return reject("%s", why)
	}}})
	if err != nil {
		return result{err: err}
	}
	return rs[0]
}

// pending is one event to apply: its id and its change.
type pending struct {
	id uuid.UUID
	fn change
}

// moneyFailed is tx's failed index when the one statement that writes every money row
// of the transaction failed: no single event is known to be at fault.
const moneyFailed = -2

// tx applies events in order in one transaction, all stamped with the same instant and
// day, and commits them together; their money rows go in one statement at the end. If
// one event fails, the transaction is rolled back and failed is its index; it is
// moneyFailed when the money rows failed, and -1 when the commit or the transaction's
// own statements did.
func (s *store) tx(ctx context.Context, evs []pending) (rs []result, failed int, err error) {
	rs, failed = make([]result, len(evs)), -1
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := taskhandlerdb.New(tx)
		// The clock is read only once the lock is held: see CloseLockShared.
		if err := q.CloseLockShared(ctx); err != nil {
			return fmt.Errorf("wait for a running daily close: %w", err)
		}
		at := stamp{now: s.now().UTC().Truncate(time.Microsecond), money: new([]taskhandlerdb.LogInsertManyParams)}
		// Under the lock a close cannot commit meanwhile, so no row of these events can
		// land in a day that closes before they commit.
		lastClosed, err := q.ClosedDayLast(ctx)
		if err != nil {
			return fmt.Errorf("read the last closed day: %w", err)
		}
		at.day = ledger.FirstOpen(bizday.Of(at.now, s.loc), lastClosed)
		ids := make([]uuid.UUID, len(evs))
		for i, ev := range evs {
			ids[i] = ev.id
		}
		claimed, err := q.ProcessedEventClaimMany(ctx, taskhandlerdb.ProcessedEventClaimManyParams{
			Consumer: events.TaskhandlerConsumer, EventIds: ids,
		})
		if err != nil {
			return fmt.Errorf("claim %d events: %w", len(ids), err)
		}
		fresh := make(map[uuid.UUID]bool, len(claimed))
		for _, id := range claimed {
			fresh[id] = true
		}
		for i, ev := range evs {
			if !fresh[ev.id] {
				rs[i] = result{outcome: Duplicate}
				continue
			}
			delete(fresh, ev.id) // a second copy in the batch is a duplicate
			if rs[i], err = applyOne(ctx, q, ev, at); err != nil {
				failed = i
				return err
			}
		}
		if len(*at.money) > 0 {
			if _, err := q.LogInsertMany(ctx, *at.money); err != nil {
				failed = moneyFailed
				return fmt.Errorf("write %d money rows: %w", len(*at.money), err)
			}
		}
		if err := q.ProcessedEventNotifyMany(ctx, taskhandlerdb.ProcessedEventNotifyManyParams{Channel: events.ProcessedChannel, EventIds: claimed}); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, failed, err
	}
	return rs, -1, nil
}

// applyOne applies the change of one event claimed by the transaction.
func applyOne(ctx context.Context, q *taskhandlerdb.Queries, ev pending, at stamp) (result, error) {
	rows := len(*at.money)
	var rej *rejection
	switch err := ev.fn(ctx, q, at); {
	case errors.As(err, &rej):
		// A change rejects before it writes to the database, so the claim and any money
		// row it queued are all there is to take back.
		*at.money = (*at.money)[:rows]
		if err := q.ProcessedEventReject(ctx, taskhandlerdb.ProcessedEventRejectParams{
			Consumer: events.TaskhandlerConsumer, EventID: ev.id, Reason: rej.reason,
		}); err != nil {
			return result{}, fmt.Errorf("record rejection: %w", err)
		}
		return result{outcome: Rejected, reason: rej.reason}, nil
	case err != nil:
		return result{}, err
	}
	return result{outcome: Applied}, nil
}

// uuids parses the ids an event carries. protovalidate checked them already, so an error
// here means the rules and this code disagree: a permanent failure, and the event goes to
// the dead-letter queue.
func uuids(ss ...string) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, len(ss))
	for i, s := range ss {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, broker.Permanent(fmt.Errorf("id %q: %w", s, err))
		}
		out[i] = id
	}
	return out, nil
}

// fee queues the fee row of one assignment.
func (s *store) fee(t taskhandlerdb.Task, eventID uuid.UUID, at stamp) {
	s.log(t.AssigneeID, t.ID, taskhandlerdb.AuditKindFee, t.Fee, eventID, at)
}

// log queues one money row of the event; the transaction writes them all at its end.
func (s *store) log(user, task uuid.UUID, kind taskhandlerdb.AuditKind, amount int64, eventID uuid.UUID, at stamp) {
	*at.money = append(*at.money, taskhandlerdb.LogInsertManyParams{
		UserID:       user,
		TaskID:       uuid.NullUUID{UUID: task, Valid: true},
		Kind:         kind,
		Amount:       amount,
		BusinessDate: at.day,
		EventID:      eventID,
		CreatedAt:    at.now,
	})
}

// create stores a new task, assigned to a random worker, and charges its fee.
func (s *store) create(ctx context.Context, id uuid.UUID, ev *eventsv1.TaskCreate) (Outcome, string, error) {
	ids, err := uuids(ev.GetTaskId(), ev.GetAuthorId())
	if err != nil {
		return "", "", err
	}
	return s.apply(ctx, id, func(ctx context.Context, q *taskhandlerdb.Queries, at stamp) error {
		// The list may predate the first worker, or the picked worker may have been
		// deactivated since it was read: then once more with a fresh list.
		for fresh := false; ; fresh = true {
			w, err := s.workers.pick(ctx, q, fresh)
			switch {
			case err != nil:
				return err
			case w == uuid.Nil && !fresh:
				continue
			case w == uuid.Nil:
				return reject("no active worker to assign the task to")
			}
			t, err := q.TaskCreate(ctx, taskhandlerdb.TaskCreateParams{
				ID:          ids[0],
				AuthorID:    ids[1],
				AssigneeID:  w,
				Description: ev.GetDescription(),
				Reward:      ev.GetReward(),
				Fee:         ev.GetFee(),
				Now:         at.now,
			})
			switch {
			case errors.Is(err, pgx.ErrNoRows) && !fresh:
				continue
			case errors.Is(err, pgx.ErrNoRows):
				return reject("no active worker to assign the task to")
			case err != nil: // a taken id aborts the transaction: apply records it
				return fmt.Errorf("create task: %w", err)
			}
			s.fee(t, id, at)
			return nil
		}
	})
}

// complete completes a task for its current assignee and credits the reward.
func (s *store) complete(ctx context.Context, id uuid.UUID, ev *eventsv1.TaskComplete) (Outcome, string, error) {
	ids, err := uuids(ev.GetTaskId(), ev.GetWorkerId())
	if err != nil {
		return "", "", err
	}
	taskID, worker := ids[0], ids[1]
	return s.apply(ctx, id, func(ctx context.Context, q *taskhandlerdb.Queries, at stamp) error {
		t, err := q.TaskComplete(ctx, taskhandlerdb.TaskCompleteParams{ID: taskID, WorkerID: worker, Now: at.now})
		if errors.Is(err, pgx.ErrNoRows) {
			if _, err := s.unchangeable(ctx, q, taskID); err != nil {
				return err
			}
			return reject("task %s is assigned to someone else", taskID)
		}
		if err != nil {
			return fmt.Errorf("complete task: %w", err)
		}
		s.log(worker, t.ID, taskhandlerdb.AuditKindReward, t.Reward, id, at)
		return nil
	})
}

// unchangeable explains why a conditional update matched nothing when the task itself is
// the reason (missing or complete); when the task is open it returns the task and nil.
func (s *store) unchangeable(ctx context.Context, q *taskhandlerdb.Queries, taskID uuid.UUID) (taskhandlerdb.Task, error) {
	t, err := q.TaskGet(ctx, taskID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return t, reject("task %s does not exist", taskID)
	case err != nil:
		return t, fmt.Errorf("read task: %w", err)
	case t.Status == taskhandlerdb.TaskStatusComplete:
		return t, reject("task %s is already complete", taskID)
	}
	return t, nil
}

// mayAssign rejects an assignment whose actor is not a manager or an admin. The tasks
// API checks the caller before it publishes; this check is for events that did not come
// through it (a forged or replayed message), so an event can never do more than its
// actor may. The role is read in the event's transaction, from the users table auth
// writes: a user demoted or deactivated before the event is applied cannot assign any
// more (a deactivated user cannot log in, so the API would refuse them too).
func mayAssign(ctx context.Context, q *taskhandlerdb.Queries, actor uuid.UUID) error {
	u, err := q.UserGetRole(ctx, actor)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return reject("actor %s is not a user", actor)
	case err != nil:
		return fmt.Errorf("read the actor's role: %w", err)
	case u.Role != taskhandlerdb.UserRoleManager && u.Role != taskhandlerdb.UserRoleAdmin:
		return reject("actor %s has the role %s; only a manager or an admin may assign tasks", actor, u.Role)
	case !u.Active:
		return reject("actor %s is deactivated; only an active manager or admin may assign tasks", actor)
	}
	return nil
}

// assign gives one open task to the named or a random worker and charges the fee.
func (s *store) assign(ctx context.Context, id uuid.UUID, ev *eventsv1.TaskAssign) (Outcome, string, error) {
	ids, err := uuids(ev.GetTaskId(), ev.GetActorId())
	if err != nil {
		return "", "", err
	}
	taskID, actor := ids[0], ids[1]
	var assignee uuid.UUID // none named: a random one
	if ev.GetAssigneeId() != "" {
		a, err := uuids(ev.GetAssigneeId())
		if err != nil {
			return "", "", err
		}
		assignee = a[0]
	}
	return s.apply(ctx, id, func(ctx context.Context, q *taskhandlerdb.Queries, at stamp) error {
		if err := mayAssign(ctx, q, actor); err != nil {
			return err
		}
		for fresh := false; ; fresh = true {
			w := assignee
			if w == uuid.Nil {
				picked, err := s.workers.pick(ctx, q, fresh)
				if err != nil {
					return err
				}
				w = picked
			}
			t, err := q.TaskAssign(ctx, taskhandlerdb.TaskAssignParams{
				ID: taskID, AssigneeID: w, Now: at.now, PickedAtRandom: assignee == uuid.Nil,
			})
			if errors.Is(err, pgx.ErrNoRows) {
				open, err := s.unchangeable(ctx, q, taskID)
				if err != nil {
					return err
				}
				switch {
				case assignee != uuid.Nil && open.AssigneeID == assignee:
					return reject("task %s is assigned to user %s already", taskID, assignee)
				case assignee != uuid.Nil:
					return reject("user %s is not an active worker", assignee)
				case !fresh:
					continue // the list predates the first worker, or the pick left meanwhile
				}
				return reject("no active worker to assign the task to")
			}
			if err != nil {
				return fmt.Errorf("assign task: %w", err)
			}
			s.fee(t, id, at)
			return nil
		}
	})
}

// reassign gives each still-open task of the batch to a random worker, charging fees, in
// one statement; it reports how many tasks moved.
func (s *store) reassign(ctx context.Context, id uuid.UUID, ev *eventsv1.TasksReassign) (Outcome, string, int, error) {
	ids, err := uuids(ev.GetTaskIds()...)
	if err != nil {
		return "", "", 0, err
	}
	actor, err := uuids(ev.GetActorId())
	if err != nil {
		return "", "", 0, err
	}
	// An event from before operation ids is an operation of its own.
	op := id
	if ev.GetOperationId() != "" {
		ops, err := uuids(ev.GetOperationId())
		if err != nil {
			return "", "", 0, err
		}
		op = ops[0]
	}
	moved := 0
	outcome, reason, err := s.apply(ctx, id, func(ctx context.Context, q *taskhandlerdb.Queries, at stamp) error {
		if err := mayAssign(ctx, q, actor[0]); err != nil {
			return err
		}
		rows, err := q.TasksReassign(ctx, taskhandlerdb.TasksReassignParams{
			TaskIds: ids, Now: at.now, BusinessDate: at.day, EventID: id, OperationID: op,
		})
		if err != nil {
			return fmt.Errorf("reassign %d tasks: %w", len(ids), err)
		}
		moved = len(rows)
		return nil
	})
	return outcome, reason, moved, err
}
