package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	analyticsv1 "github.com/ates/ates/gen/analytics/v1"
	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/analytics/internal/analyticsdb"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/taskproto"
)

// maxRangeDays bounds a range of days asked for at once.
const maxRangeDays = 366

// Server implements analyticsv1.AnalyticsServiceServer, for admins only.
type Server struct {
	analyticsv1.UnimplementedAnalyticsServiceServer
	store *store
	loc   *time.Location
	now   func() time.Time
	log   *slog.Logger
}

// GetWorkerStats counts the workers whose balance of a day is below zero.
func (s *Server) GetWorkerStats(ctx context.Context, req *analyticsv1.GetWorkerStatsRequest) (*analyticsv1.GetWorkerStatsResponse, error) {
	if _, err := authn.Require(ctx, authv1.Role_ROLE_ADMIN); err != nil {
		return nil, err
	}
	day, err := s.day(ctx, "date", req.GetDate())
	if err != nil {
		return nil, err
	}
	negative, workers, below, err := s.store.workerStats(ctx, day)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &analyticsv1.GetWorkerStatsResponse{Date: bizday.Format(day), NegativeBalanceWorkers: negative, Workers: workers}
	for _, b := range below {
		resp.BelowZero = append(resp.BelowZero, &analyticsv1.WorkerBalance{UserId: b.id.String(), Name: b.name, Email: b.email, Balance: b.balance})
	}
	return resp, nil
}

// GetCompanyEarnings shows the earnings of each day of the range and their total.
func (s *Server) GetCompanyEarnings(ctx context.Context, req *analyticsv1.GetCompanyEarningsRequest) (*analyticsv1.GetCompanyEarningsResponse, error) {
	if _, err := authn.Require(ctx, authv1.Role_ROLE_ADMIN); err != nil {
		return nil, err
	}
	var from, to time.Time
	var err error
	switch {
	case req.GetDate() != "" && (req.GetFrom() != "" || req.GetTo() != ""):
		return nil, server.InvalidField("date", "give either date or from and to, not both")
	case req.GetFrom() != "" || req.GetTo() != "":
		from, to, err = s.dayRange(ctx, req.GetFrom(), req.GetTo())
	default:
		from, err = s.day(ctx, "date", req.GetDate())
		to = from
	}
	if err != nil {
		return nil, err
	}
	byDay, err := s.store.earnings(ctx, from, to)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &analyticsv1.GetCompanyEarningsResponse{}
	for d := from; !d.After(to); d = bizday.Next(d) {
		resp.Days = append(resp.Days, &analyticsv1.DayEarnings{Date: bizday.Format(d), Earnings: byDay[d]})
		resp.Total += byDay[d]
	}
	return resp, nil
}

// GetTopTask finds the completed task with the highest reward completed in the range.
func (s *Server) GetTopTask(ctx context.Context, req *analyticsv1.GetTopTaskRequest) (*analyticsv1.GetTopTaskResponse, error) {
	if _, err := authn.Require(ctx, authv1.Role_ROLE_ADMIN); err != nil {
		return nil, err
	}
	from, to, err := s.dayRange(ctx, req.GetFrom(), req.GetTo())
	if err != nil {
		return nil, err
	}
	// The business days as instants: from the first day's midnight to the midnight after
	// the last, in the business time zone.
	start := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, s.loc)
	until := time.Date(to.Year(), to.Month(), to.Day()+1, 0, 0, 0, 0, s.loc)
	t, err := s.store.topTask(ctx, start, until)
	if errors.Is(err, pgutil.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "no task was completed from %s to %s", req.GetFrom(), req.GetTo())
	}
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &analyticsv1.GetTopTaskResponse{Task: taskproto.Proto(taskproto.Row[analyticsdb.TaskStatus](t.Task), t.AssigneeName)}, nil
}

// day reads one requested day named field: empty is the current business day (today,
// or the first open day after it when today was closed early), no later day.
func (s *Server) day(ctx context.Context, field, date string) (time.Time, error) {
	current, err := s.currentDay(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return parseDay(field, date, current, s.loc)
}

// dayRange reads from and to against one reading of the current business day.
func (s *Server) dayRange(ctx context.Context, fromDate, toDate string) (from, to time.Time, err error) {
	current, err := s.currentDay(ctx)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return parseRange(fromDate, toDate, current, s.loc)
}

func (s *Server) currentDay(ctx context.Context) (time.Time, error) {
	current, err := s.store.currentDay(ctx, bizday.Of(s.now(), s.loc))
	if err != nil {
		return time.Time{}, s.toStatus(ctx, err)
	}
	return current, nil
}

// parseDay reads the day named field given the current business day: empty is the
// current day, no later day is accepted. loc only names the time zone in errors.
func parseDay(field, date string, current time.Time, loc *time.Location) (time.Time, error) {
	day, err := bizday.ParseUpTo(date, current)
	if err != nil {
		return time.Time{}, server.InvalidField(field, fmt.Sprintf("%v in %s", err, loc))
	}
	return day, nil
}

// parseRange reads from and to: both required, from ≤ to ≤ current, at most maxRangeDays
// days.
func parseRange(fromDate, toDate string, current time.Time, loc *time.Location) (from, to time.Time, err error) {
	switch {
	case fromDate == "":
		return time.Time{}, time.Time{}, server.InvalidField("from", "give both ends of the range")
	case toDate == "":
		return time.Time{}, time.Time{}, server.InvalidField("to", "give both ends of the range")
	}
	if from, err = parseDay("from", fromDate, current, loc); err != nil {
		return time.Time{}, time.Time{}, err
	}
	if to, err = parseDay("to", toDate, current, loc); err != nil {
		return time.Time{}, time.Time{}, err
	}
	switch {
	case to.Before(from):
		return time.Time{}, time.Time{}, server.InvalidField("to", fmt.Sprintf("%s is before from %s", toDate, fromDate))
	case to.Sub(from) >= maxRangeDays*24*time.Hour:
		return time.Time{}, time.Time{}, server.InvalidField("to", fmt.Sprintf("a range is at most %d days", maxRangeDays))
	}
	return from, to, nil
}

func (s *Server) toStatus(ctx context.Context, err error) error {
	return server.Status(ctx, s.log, err)
}
