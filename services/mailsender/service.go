// Package mailsender mails each worker the summary of a closed day: it consumes the
// send_email events dailyaccounting publishes and sends a plain-text and HTML mail
// through SMTP, once per event. It has no API: its HTTP port serves /healthz, /readyz
// and /metrics.
package mailsender

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/server"
)

// Service is mailsender assembled: the consumer and the HTTP server.
type Service struct {
	pool   *pgxpool.Pool
	conn   *broker.Conn
	queue  broker.QueueSpec
	mailer *mailer
	// prefetch is how many mails are sent at once, each on its own SMTP session.
	prefetch int
	timeout  time.Duration
	retry    [2]time.Duration
	mails    *prometheus.CounterVec
	trusted  *broker.Keyring // dailyaccounting's keys: only its send_email events are sent
	srv      *server.Server
	log      *slog.Logger
}

// New builds mailsender on deps: it consumes queue (events.MailsenderQueueSpec in production, a private one
// in tests), sends through cfg.SMTP, records sent mails in the database and serves HTTP
// on listen.HTTP.
func New(cfg config.Config, listen config.Listen, deps *app.Deps, queue broker.QueueSpec, log *slog.Logger) (*Service, error) {
	m, err := newMailer(cfg.SMTP, cfg.EventTimeout, cfg.MailsenderPrefetch)
	if err != nil {
		return nil, fmt.Errorf("mailsender: %w", err)
	}
	srv, err := deps.HealthServer("mailsender", listen.HTTP, cfg, log)
	if err != nil {
		return nil, err
	}
	mails := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_mailsender_mails_total",
		Help: "send_email events handled, by result: sent, duplicate (sent before) or failed (SMTP or database trouble; retried, or dead-lettered on a permanent SMTP refusal).",
	}, []string{"result"})
	srv.Registry().MustRegister(mails)
	return &Service{
		pool: deps.Pool, conn: deps.Broker, queue: queue, mailer: m, prefetch: cfg.MailsenderPrefetch, timeout: cfg.EventTimeout,
		retry: [2]time.Duration{cfg.EventRetryMin, cfg.EventRetryMax}, mails: mails, srv: srv, log: log,
		trusted: cfg.TrustedKeysOf(events.Mailsender),
	}, nil
}

// HTTPAddr is the bound address of /healthz, /readyz and /metrics.
func (s *Service) HTTPAddr() string { return s.srv.HTTPAddr() }

// Serve declares the queue, then consumes and serves HTTP until ctx ends; mails being
// sent are finished first.
func (s *Service) Serve(ctx context.Context) error {
	if err := s.conn.DeclareQueue(ctx, s.queue); err != nil {
		return fmt.Errorf("mailsender: %w", err)
	}
	defer s.mailer.close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.srv.Serve(ctx) })
	g.Go(func() error {
		return s.conn.Consume(ctx, broker.ConsumerConfig{
			Queue:    s.queue.Name,
			Prefetch: s.prefetch,
			Timeout:  s.timeout,
			Routes:   []broker.Route{broker.On(events.SendEmail, s.send)},
			Verify:   s.trusted,
			Probe:    s.pool.Ping,
			RetryMin: s.retry[0],
			RetryMax: s.retry[1],
			Metrics:  s.srv.Registry(),
		})
	})
	return g.Wait()
}

// Run serves mailsender until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	log = log.With("service", "mailsender")
	deps, err := app.Open(ctx, cfg, "mailsender", log, app.Needs{Postgres: true, Broker: true})
	if err != nil {
		return err
	}
	defer deps.Close()
	s, err := New(cfg, cfg.MailsenderListen, deps, events.MailsenderQueueSpec(events.MailsenderQueue), log)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}
