// Package dailyaccounting closes business days: for every worker it writes the day's
// balance row, pays out a positive closing balance (a payout row in the audit log) or
// carries a negative one over, and queues a summary mail (a send_email event) in the
// transactional outbox, all in one transaction. A relay publishes the outbox to the
// broker; a cron schedule closes yesterday every day; CloseDayCommand closes any past day
// by hand. It has no API: its HTTP port serves /healthz, /readyz and /metrics.
package dailyaccounting

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
	"golang.org/x/sync/errgroup"

	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/server"
)

// Spec is how ates builds and runs dailyaccounting. Mailsender's queue is declared
// before it starts, so that the relay's summaries are routable even before mailsender
// first ran.
var Spec = app.Spec{
	Name:  "dailyaccounting",
	Needs: app.Needs{Postgres: true, Broker: true},
	Queues: func(cfg config.Config) []broker.QueueSpec {
		return []broker.QueueSpec{events.MailsenderQueueSpec(cfg.Queues.Mailsender)}
	},
	New: app.Builder(New),
}

// Service is dailyaccounting assembled: the closer, the outbox relay, the schedule and
// the HTTP server.
type Service struct {
	*server.Server
	closer   *Closer
	relay    *Relay
	schedule cron.Schedule
	loc      *time.Location
	log      *slog.Logger
}

// New builds dailyaccounting on deps (PostgreSQL and the broker), with its HTTP server on
// cfg.DailyaccountingListen.
func New(cfg config.Config, deps *app.Deps, log *slog.Logger) (*Service, error) {
	schedule, err := parseSchedule(cfg.CloseDaySchedule)
	if err != nil {
		return nil, fmt.Errorf("dailyaccounting: %w", err)
	}
	srv, err := deps.HealthServer("dailyaccounting", cfg.DailyaccountingListen.HTTP, cfg, log)
	if err != nil {
		return nil, err
	}
	s := &Service{
		Server:   srv,
		closer:   NewCloser(deps.Pool, cfg.BusinessTZ, log),
		relay:    NewRelay(deps.Pool, deps.Broker, cfg.OutboxPollInterval, log.With("component", "outbox")),
		schedule: schedule,
		loc:      cfg.BusinessTZ,
		log:      log,
	}
	s.closer.onClosed = s.relay.Wake
	s.closer.Register(srv.Registry())
	s.relay.Register(srv.Registry())
	return s, nil
}

// CloseDay closes day (and any earlier open day) now; see Closer.CloseDay.
func (s *Service) CloseDay(ctx context.Context, day time.Time) ([]DayClosed, error) {
	return s.closer.CloseDay(ctx, day)
}

// Serve runs the HTTP server, the relay and the schedule until ctx ends.
func (s *Service) Serve(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Server.Serve(ctx) })
	g.Go(func() error { return s.relay.Run(ctx) })
	g.Go(func() error { return s.runSchedule(ctx) })
	return g.Wait()
}

// CloseDayCommand is `ates close-day --date YYYY-MM-DD`: it closes that day, and any
// earlier open day first, and logs what it wrote. The summary mails wait in the outbox
// until a running dailyaccounting service publishes them (within its poll interval).
func CloseDayCommand(ctx context.Context, cfg config.Config, log *slog.Logger, date string) error {
	day, err := bizday.Parse(date)
	if err != nil {
		return fmt.Errorf("close-day --date: %w", err)
	}
	pool, err := pgutil.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("close-day: %w", err)
	}
	defer pool.Close()
	closed, err := NewCloser(pool, cfg.BusinessTZ, log).CloseDay(ctx, day)
	if err != nil {
		return err
	}
	if len(closed) == 0 {
		log.InfoContext(ctx, "nothing to close: the day is closed already", "date", date)
	}
	return nil
}
