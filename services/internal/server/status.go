package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ates/ates/services/internal/apperr"
)

// Status is the shared tail of every service's toStatus: errors that are already gRPC
// statuses pass through, context and store errors map to their codes (a database that
// cannot be reached is Unavailable, HTTP 503, which clients retry), and anything else
// becomes Internal with a generic message while the cause goes to the log.
func Status(ctx context.Context, log *slog.Logger, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, apperr.ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "call canceled")
	case apperr.IsUnavailable(err):
		log.WarnContext(ctx, "database unavailable", "err", err)
		return status.Error(codes.Unavailable, "the database is unavailable; try again shortly")
	}
	log.ErrorContext(ctx, "call failed", "err", err)
	return status.Error(codes.Internal, "internal error")
}
