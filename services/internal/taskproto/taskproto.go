// Package taskproto turns a tasks row into the tasks.v1.Task every API answers with, so
// that the tasks API and analytics show a task the same way.
package taskproto

import (
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/types/known/timestamppb"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
)

// Row has the fields of the tasks table in its column order: each service's sqlc Task
// converts to it directly, e.g. taskproto.Row(t).
type Row struct {
	ID          uuid.UUID
	AuthorID    uuid.UUID
	AssigneeID  uuid.UUID
	Description string
	Reward      int64
	Fee         int64
	Status      string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt pgtype.Timestamptz
	ReassignOp  uuid.NullUUID
}

// Proto is the API's view of the row, whose assignee registered as assigneeName.
func Proto(r Row, assigneeName string) *tasksv1.Task {
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

// Status maps the status column to the API's enum.
func Status(s string) tasksv1.TaskStatus {
	switch s {
	case "complete":
		return tasksv1.TaskStatus_TASK_STATUS_COMPLETE
	case "in_progress":
		return tasksv1.TaskStatus_TASK_STATUS_IN_PROGRESS
	}
	return tasksv1.TaskStatus_TASK_STATUS_UNSPECIFIED
}
