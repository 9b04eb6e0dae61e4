package tasks

import (
	"math/rand/v2"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/tasks/internal/tasksdb"
)

// The price ranges of docs/product.md, in whole units; the tasks table's checks hold
// the same bounds.
const (
	minFee, maxFee       = 10, 20 // charged on every assignment, as a negative amount
	minReward, maxReward = 20, 40 // paid once, on completion
)

// price is what a task costs its assignee on each assignment (fee, negative) and pays on
// completion (reward, positive).
type price struct {
	fee, reward int64
}

// drawPrice is the price of a new task: fee and reward drawn uniformly from their
// ranges, bounds included, when the task is created; they never change afterwards.
//
//nolint:gosec // G404: prices must be uniform, not secret: math/rand/v2's ChaCha8 is seeded from the OS and no caller steers it
func drawPrice() price {
	return price{
		fee:    -int64(minFee + rand.IntN(maxFee-minFee+1)),
		reward: int64(minReward + rand.IntN(maxReward-minReward+1)),
	}
}

// action is a call of the tasks API, as the access table of docs/product.md names them.
type action int

const (
	actCreate action = iota
	actComplete
	actAssign
	actReassignAll
	actGet
	actList
)

// authorize is the access table of docs/product.md, in one place: may u do a to t (nil for calls that
// are not about one task)?
func authorize(u authn.User, a action, t *tasksdb.Task) error {
	manages := u.Role == authv1.Role_ROLE_MANAGER || u.Role == authv1.Role_ROLE_ADMIN
	switch a {
	case actCreate, actList:
		return nil
	case actComplete:
		if u.Role == authv1.Role_ROLE_WORKER && t.AssigneeID == u.ID {
			return nil
		}
		return status.Error(codes.PermissionDenied, "only the task's current assignee may complete it")
	case actAssign, actReassignAll:
		if manages {
			return nil
		}
		return status.Errorf(codes.PermissionDenied, "a %s may not assign tasks", authn.RoleName(u.Role))
	case actGet:
		switch {
		case manages,
			u.Role == authv1.Role_ROLE_WORKER && (t.AssigneeID == u.ID || t.AuthorID == u.ID),
			u.Role == authv1.Role_ROLE_ACCOUNTANT && t.AuthorID == u.ID:
			return nil
		}
		return status.Error(codes.PermissionDenied, "this task is neither yours nor assigned to you")
	}
	return status.Error(codes.PermissionDenied, "not allowed")
}

// listScope narrows a list call to what u may see: a worker their assigned tasks, an
// accountant the tasks they wrote, managers and admins everything (filtered by assignee
// if they ask).
func listScope(u authn.User, assignee uuid.NullUUID) (assigneeID, authorID uuid.NullUUID, err error) {
	switch u.Role {
	case authv1.Role_ROLE_MANAGER, authv1.Role_ROLE_ADMIN:
		return assignee, uuid.NullUUID{}, nil
	case authv1.Role_ROLE_WORKER:
		if assignee.Valid && assignee.UUID != u.ID {
			return uuid.NullUUID{}, uuid.NullUUID{}, status.Error(codes.PermissionDenied, "assignee_id: a worker may list only their own tasks")
		}
		return uuid.NullUUID{UUID: u.ID, Valid: true}, uuid.NullUUID{}, nil
	case authv1.Role_ROLE_ACCOUNTANT:
		if assignee.Valid {
			return uuid.NullUUID{}, uuid.NullUUID{}, status.Error(codes.PermissionDenied, "assignee_id: an accountant may list only the tasks they created")
		}
		return uuid.NullUUID{}, uuid.NullUUID{UUID: u.ID, Valid: true}, nil
	}
	return uuid.NullUUID{}, uuid.NullUUID{}, status.Error(codes.PermissionDenied, "not allowed")
}
