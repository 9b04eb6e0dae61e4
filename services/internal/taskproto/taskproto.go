// Package taskproto turns a tasks row into the tasks.v1.Task every API answers with, so
// that the tasks API and analytics show a task the same way.
package taskproto

import (
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/types/known/timestamppb"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
)

// Row has the fields of the tasks table in its column order: each service's sqlc Task
// converts to it directly, e.g. taskproto.Row[tasksdb.TaskStatus](t). S is that
// service's generated type of the task_status enum.
type Row[S ~string] struct {
	ID          uuid.UUID
	AuthorID    uuid.UUID
	AssigneeID  uuid.UUID
	Description string
	Reward      int64
	Fee         int64
	Status      S
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt pgtype.Timestamptz
	ReassignOp  uuid.NullUUID
}

// Proto is the API's view of the row, whose assignee registered as assigneeName.
func Proto[S ~string](r Row[S], assigneeName string) *tasksv1.Task {
	p := &tasksv1.Task{
		Id:           r.ID.String(),
		Author:       r.AuthorID.String(),
		AssignedTo:   r.AssigneeID.String(),
		AssigneeName: assigneeName,
		Description:  r.Description,
		Reward:       r.Reward,
		Fee:          r.Fee,
		Status:       Status(r.Status),
		CreatedAt:    timestamppb.New(r.CreatedAt),
		UpdatedAt:    timestamppb.New(r.UpdatedAt),
	}
	if r.CompletedAt.Valid {
		p.CompletedAt = timestamppb.New(r.CompletedAt.Time)
	}
	return p
}

// statusPrefix starts the names of the API's status values.
const statusPrefix = "TASK_STATUS_"

// Status maps a label of the task_status enum to the API's enum: the label is the
// value's name without its prefix, in lower case (complete is TASK_STATUS_COMPLETE).
// An unknown label is TASK_STATUS_UNSPECIFIED.
func Status[S ~string](s S) tasksv1.TaskStatus {
	return tasksv1.TaskStatus(tasksv1.TaskStatus_value[statusPrefix+strings.ToUpper(string(s))])
}

// StatusLabel is the task_status label of the API's status, the inverse of Status.
func StatusLabel[S ~string](s tasksv1.TaskStatus) S {
	return S(strings.ToLower(strings.TrimPrefix(s.String(), statusPrefix)))
}
