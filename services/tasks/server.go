package tasks

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/idempotency"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/taskproto"
	"github.com/ates/ates/services/tasks/internal/tasksdb"
)

// Server implements tasksv1.TaskServiceServer. It validates and authorizes, publishes
// the event and, when asked to wait, waits for taskhandler's verdict.
type Server struct {
	tasksv1.UnimplementedTaskServiceServer
	store       *store
	broker      *broker.Conn
	waiter      *waiter
	log         *slog.Logger
	waitTimeout time.Duration
	batchSize   int
	gate        *gate
	quotas      *quotas
}

// publish sends one event, once taskhandler's backlog admits it (see gate).
func (s *Server) publish(ctx context.Context, k retryKey, key string, msg proto.Message, eventID uuid.UUID) error {
	if err := s.gate.admit(ctx); err != nil {
		return err
	}
	return publish(ctx, s.broker, s.log, k, key, msg, eventID)
}

// CreateTask prices the task and publishes task_create; taskhandler assigns it.
func (s *Server) CreateTask(ctx context.Context, req *tasksv1.CreateTaskRequest) (*tasksv1.CreateTaskResponse, error) {
	u, _ := authn.UserFrom(ctx)
	k, err := newRetryKey(u.ID, tasksv1.TaskService_CreateTask_FullMethodName, req.GetRequestId())
	if err != nil {
		return nil, err
	}
	id, err := k.id("task")
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	eventID, err := k.eventAbout(id)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	answer := func() (*tasksv1.CreateTaskResponse, error) {
		task, err := s.settle(ctx, req.GetWait(), eventID, id)
		return &tasksv1.CreateTaskResponse{Id: id.String(), Task: task}, err
	}
	if done, err := s.applied(ctx, k, eventID); err != nil || done {
		return orErr(answer, err)
	}
	// A retry of a create that was applied is answered above without cost.
	if err := s.quotas.allowCreate(u); err != nil {
		return nil, err
	}
	if ok, err := s.store.anyActiveWorker(ctx); err != nil {
		return nil, s.toStatus(ctx, err)
	} else if !ok {
		return nil, status.Error(codes.FailedPrecondition, "no active worker to assign the task to")
	}
	p := drawPrice()
	err = s.publish(ctx, k, events.TaskCreate, &eventsv1.TaskCreate{
		TaskId:      id.String(),
		AuthorId:    u.ID.String(),
		Description: req.GetDescription(),
		Fee:         p.fee,
		Reward:      p.reward,
	}, eventID)
	if err != nil {
		return nil, err
	}
	return answer()
}

// CompleteTask publishes task_complete for the caller, who must hold the task.
func (s *Server) CompleteTask(ctx context.Context, req *tasksv1.CompleteTaskRequest) (*tasksv1.CompleteTaskResponse, error) {
	u, _ := authn.UserFrom(ctx)
	k, eventID, taskID, err := s.writeOn(u, tasksv1.TaskService_CompleteTask_FullMethodName, req.GetRequestId(), req.GetId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	answer := func() (*tasksv1.CompleteTaskResponse, error) {
		task, err := s.settle(ctx, req.GetWait(), eventID, taskID)
		return &tasksv1.CompleteTaskResponse{Id: taskID.String(), Task: task}, err
	}
	if done, err := s.applied(ctx, k, eventID); err != nil || done {
		return orErr(answer, err)
	}
	t, err := s.authorized(ctx, u, actComplete, req.GetId())
	if err != nil {
		return nil, err
	}
	if t.Status == tasksdb.TaskStatusComplete {
		// Perhaps by this very call's first attempt, applied since we looked.
		if done, err := s.applied(ctx, k, eventID); err != nil || done {
			return orErr(answer, err)
		}
		return nil, status.Error(codes.FailedPrecondition, "the task is already complete")
	}
	err = s.publish(ctx, k, events.TaskComplete, &eventsv1.TaskComplete{TaskId: t.ID.String(), WorkerId: u.ID.String()}, eventID)
	if err != nil {
		return nil, err
	}
	return answer()
}

// AssignTask publishes task_assign for one open task.
func (s *Server) AssignTask(ctx context.Context, req *tasksv1.AssignTaskRequest) (*tasksv1.AssignTaskResponse, error) {
	u, _ := authn.UserFrom(ctx)
	k, eventID, taskID, err := s.writeOn(u, tasksv1.TaskService_AssignTask_FullMethodName, req.GetRequestId(), req.GetId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	answer := func() (*tasksv1.AssignTaskResponse, error) {
		task, err := s.settle(ctx, req.GetWait(), eventID, taskID)
		return &tasksv1.AssignTaskResponse{Id: taskID.String(), Task: task}, err
	}
	if done, err := s.applied(ctx, k, eventID); err != nil || done {
		return orErr(answer, err)
	}
	t, err := s.authorized(ctx, u, actAssign, req.GetId())
	if err != nil {
		return nil, err
	}
	if t.Status == tasksdb.TaskStatusComplete {
		return nil, status.Error(codes.FailedPrecondition, "the task is already complete")
	}
	if req.GetAssigneeId() != "" {
		assignee, err := parseID("assignee_id", req.GetAssigneeId())
		if err != nil {
			return nil, err
		}
		ok, err := s.store.isActiveWorker(ctx, assignee)
		if errors.Is(err, pgutil.ErrNotFound) {
			return nil, status.Error(codes.NotFound, "assignee_id: no such user")
		}
		if err != nil {
			return nil, s.toStatus(ctx, err)
		}
		if !ok {
			return nil, server.InvalidField("assignee_id", "not an active worker")
		}
		if assignee == t.AssigneeID {
			// Nothing would change, and an assignment charges a fee.
			return nil, status.Error(codes.FailedPrecondition, "assignee_id: the task is assigned to them already")
		}
	}
	err = s.publish(ctx, k, events.TaskAssign, &eventsv1.TaskAssign{
		TaskId: t.ID.String(), AssigneeId: req.GetAssigneeId(), ActorId: u.ID.String(),
	}, eventID)
	if err != nil {
		return nil, err
	}
	return answer()
}

// writeOn reads the retry key of a call by u to method about one task and derives the
// call's event id.
func (s *Server) writeOn(u authn.User, method, requestID, id string) (k retryKey, eventID, taskID uuid.UUID, err error) {
	if taskID, err = parseID("id", id); err != nil {
		return k, uuid.Nil, uuid.Nil, err
	}
	if k, err = newRetryKey(u.ID, method, requestID); err != nil {
		return k, uuid.Nil, uuid.Nil, err
	}
	eventID, err = k.eventAbout(taskID)
	return k, eventID, taskID, err
}

// orErr returns err if there is one, else what answer says.
func orErr[T any](answer func() (T, error), err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return answer()
}

// ReassignTasks publishes tasks_reassign events for every open task, in batches, all
// under one operation id that taskhandler moves each task at most once for. With a
// request_id the operation id is derived, and each batch's event id from the operation
// and the batch's tasks: a retry republishes an unchanged batch under the same id (and
// skips it if it was applied), while a batch that changed because tasks were completed
// or created in between is a new event that skips the tasks the operation moved.
func (s *Server) ReassignTasks(ctx context.Context, req *tasksv1.ReassignTasksRequest) (*tasksv1.ReassignTasksResponse, error) {
	u, _ := authn.UserFrom(ctx)
	if err := authorize(u, actReassignAll, nil); err != nil {
		return nil, err
	}
	finish, err := s.quotas.startReassign(u)
	if err != nil {
		return nil, err
	}
	defer finish()
	k, err := newRetryKey(u.ID, tasksv1.TaskService_ReassignTasks_FullMethodName, req.GetRequestId())
	if err != nil {
		return nil, err
	}
	op, err := k.id("operation")
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	if ok, err := s.store.anyActiveWorker(ctx); err != nil {
		return nil, s.toStatus(ctx, err)
	} else if !ok {
		return nil, status.Error(codes.FailedPrecondition, "no active worker to assign tasks to")
	}
	resp := &tasksv1.ReassignTasksResponse{OperationId: op.String()}
	var eventIDs []uuid.UUID
	after := uuid.Nil
	for {
		ids, err := s.store.openTaskIDs(ctx, after, s.batchSize)
		if err != nil {
			return nil, s.toStatus(ctx, err)
		}
		if len(ids) == 0 {
			break
		}
		eventID, err := batchEventID(k, op, ids)
		if err != nil {
			return nil, s.toStatus(ctx, err)
		}
		done, err := s.applied(ctx, k, eventID)
		if err != nil {
			return nil, err
		}
		if !done {
			ev := &eventsv1.TasksReassign{ActorId: u.ID.String(), OperationId: op.String(), TaskIds: make([]string, len(ids))}
			for i, id := range ids {
				ev.TaskIds[i] = id.String()
			}
			if err := s.publish(ctx, k, events.TasksReassign, ev, eventID); err != nil {
				// Batches already confirmed will be applied; say how far we got.
				s.log.WarnContext(ctx, "reassign-all stopped part way", "operation_id", op, "batches_published", len(eventIDs), "tasks_published", resp.TaskCount)
				return nil, err
			}
		}
		eventIDs = append(eventIDs, eventID)
		resp.EventIds = append(resp.EventIds, eventID.String())
		resp.TaskCount += int64(len(ids))
		after = ids[len(ids)-1]
	}
	if !req.GetWait() || len(eventIDs) == 0 {
		return resp, nil
	}
	ctx, cancel := s.waitContext(ctx)
	defer cancel()
	for _, id := range eventIDs {
		if _, err := s.waiter.wait(ctx, id); err != nil {
			return nil, s.afterPublish(ctx, err)
		}
	}
	moved, err := s.store.movedBy(ctx, eventIDs)
	if err != nil {
		return nil, s.afterPublish(ctx, err)
	}
	resp.ReassignedCount = moved
	return resp, nil
}

// batchEventID is the event id of the batch of operation op holding ids: derived from
// op and the set of ids with a request_id, new without.
func batchEventID(k retryKey, op uuid.UUID, ids []uuid.UUID) (uuid.UUID, error) {
	if !k.given {
		return k.id("")
	}
	return idempotency.SetID(op, ids), nil
}

// GetTask shows one task to those who may see it.
func (s *Server) GetTask(ctx context.Context, req *tasksv1.GetTaskRequest) (*tasksv1.GetTaskResponse, error) {
	u, _ := authn.UserFrom(ctx)
	t, err := s.authorized(ctx, u, actGet, req.GetId())
	if err != nil {
		return nil, err
	}
	return &tasksv1.GetTaskResponse{Task: toProto(t)}, nil
}

// ListTasks pages through the tasks the caller may see, newest first.
func (s *Server) ListTasks(ctx context.Context, req *tasksv1.ListTasksRequest) (*tasksv1.ListTasksResponse, error) {
	u, _ := authn.UserFrom(ctx)
	var assignee uuid.NullUUID
	if req.GetAssigneeId() != "" {
		id, err := parseID("assignee_id", req.GetAssigneeId())
		if err != nil {
			return nil, err
		}
		assignee = uuid.NullUUID{UUID: id, Valid: true}
	}
	assignee, author, err := listScope(u, assignee)
	if err != nil {
		return nil, err
	}
	after, err := parseCursor(req.GetPageToken())
	if err != nil {
		return nil, server.InvalidField("page_token", err.Error())
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = 50
	}
	rows, next, err := s.store.list(ctx, listFilter{assignee: assignee, author: author, status: req.GetStatus(), after: after, size: size})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &tasksv1.ListTasksResponse{Tasks: make([]*tasksv1.Task, len(rows))}
	for i, t := range rows {
		resp.Tasks[i] = toProto(t)
	}
	if next != nil {
		resp.NextPageToken = next.token()
	}
	return resp, nil
}

// authorized reads the task and checks that u may do a to it.
func (s *Server) authorized(ctx context.Context, u authn.User, a action, id string) (namedTask, error) {
	taskID, err := parseID("id", id)
	if err != nil {
		return namedTask{}, err
	}
	t, err := s.store.task(ctx, taskID)
	if errors.Is(err, pgutil.ErrNotFound) {
		return namedTask{}, status.Errorf(codes.NotFound, "id: no task %s", id)
	}
	if err != nil {
		return namedTask{}, s.toStatus(ctx, err)
	}
	return t, authorize(u, a, &t.Task)
}

// settle waits, when asked to, for taskhandler's verdict on eventID and returns the task
// as it then stands, or FailedPrecondition with the reason it was rejected.
func (s *Server) settle(ctx context.Context, wait bool, eventID, taskID uuid.UUID) (*tasksv1.Task, error) {
	if !wait {
		return nil, nil
	}
	ctx, cancel := s.waitContext(ctx)
	defer cancel()
	v, err := s.waiter.wait(ctx, eventID)
	if err != nil {
		return nil, s.afterPublish(ctx, err)
	}
	if v.rejected {
		return nil, status.Error(codes.FailedPrecondition, v.reason)
	}
	t, err := s.store.task(ctx, taskID)
	if err != nil {
		return nil, s.afterPublish(ctx, err)
	}
	return toProto(t), nil
}

// afterPublish translates an error met once the event is confirmed: the change will be
// applied, so a database that did not answer must not read as "nothing happened".
func (s *Server) afterPublish(ctx context.Context, err error) error {
	err = s.toStatus(ctx, err)
	if status.Code(err) == codes.Unavailable {
		return status.Error(codes.Unavailable, "the change was sent and will be applied, but the database did not answer while waiting for its result; retry with the same request_id to read it")
	}
	return err
}

// waitContext bounds a wait by the configured timeout unless the caller's deadline is
// sooner.
func (s *Server) waitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.waitTimeout)
}

// parseID reads an id field; protovalidate has checked its shape already, so this only
// guards against the rules and the code drifting apart.
func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, server.InvalidField(field, "must be a UUID")
	}
	return id, nil
}

func (s *Server) toStatus(ctx context.Context, err error) error {
	return server.Status(ctx, s.log, err)
}

func toProto(t namedTask) *tasksv1.Task {
	return taskproto.Proto(taskproto.Row[tasksdb.TaskStatus](t.Task), t.assigneeName)
}
