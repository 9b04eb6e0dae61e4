package dailyaccounting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/ates/ates/services/internal/bizday"
)

// scheduleTimeout bounds one scheduled close (it may have many days to catch up on).
const scheduleTimeout = 10 * time.Minute

// parseSchedule reads a standard five-field cron spec (or a descriptor such as @daily).
func parseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("ATES_CLOSE_DAY_SCHEDULE %q: %w", spec, err)
	}
	return s, nil
}

// runSchedule closes yesterday at every tick of sched in the business time zone until
// ctx ends. If today's run was due before the service started (it was down at the
// time), it closes yesterday at once rather than a day late.
func (s *Service) runSchedule(ctx context.Context) error {
	c := cron.New(
		cron.WithLocation(s.loc),
		cron.WithLogger(cronLogger{s.log}),
		cron.WithChain(cron.SkipIfStillRunning(cronLogger{s.log})),
	)
	c.Schedule(s.schedule, cron.FuncJob(func() { s.closeYesterday(ctx) }))
	if s.missedToday() {
		s.log.InfoContext(ctx, "today's close time has passed; closing yesterday now in case that run was missed")
		s.closeYesterday(ctx)
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

// missedToday reports whether the schedule fired today before now.
func (s *Service) missedToday() bool {
	now := s.closer.now().In(s.loc)
	y, m, d := now.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, s.loc)
	return !s.schedule.Next(midnight.Add(-time.Nanosecond)).After(now)
}

// closeYesterday closes the business day before today, and any open day before it.
func (s *Service) closeYesterday(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, scheduleTimeout)
	defer cancel()
	yesterday := bizday.Prev(bizday.Of(s.closer.now(), s.loc))
	closed, err := s.closer.CloseDay(ctx, yesterday)
	if errors.Is(err, context.Canceled) {
		s.log.InfoContext(ctx, "scheduled close interrupted by shutdown; the next run closes the day", "date", bizday.Format(yesterday))
		return
	}
	if err != nil {
		s.log.ErrorContext(ctx, "scheduled close failed; the next run closes the day", "date", bizday.Format(yesterday), "err", err)
		return
	}
	if len(closed) == 0 {
		s.log.InfoContext(ctx, "scheduled close: already closed", "date", bizday.Format(yesterday))
	}
}

// cronLogger sends cron's own messages to slog.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
