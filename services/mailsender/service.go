// Package mailsender mails each worker the summary of a closed day: it consumes the
// send_email events dailyaccounting publishes and sends a plain-text and HTML mail
// through SMTP, once per event. It has no API: its HTTP port serves /healthz, /readyz
// and /metrics.
package mailsender

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/server"
)

// Spec is how ates builds and runs mailsender.
var Spec = app.Spec{
	Name:  "mailsender",
	Needs: app.Needs{Postgres: true, Broker: true},
	New:   app.Builder(New),
}

// Service is mailsender assembled: the consumer and the HTTP server.
type Service struct {
	*server.Server
	cfg    config.Config
	deps   *app.Deps
	mailer *mailer
	mails  *prometheus.CounterVec
	log    *slog.Logger
}

// New builds mailsender on deps: it consumes cfg.Queues.Mailsender, sends through
// cfg.SMTP, records sent mails in the database and serves HTTP on
// cfg.MailsenderListen.
func New(cfg config.Config, deps *app.Deps, log *slog.Logger) (*Service, error) {
	m, err := newMailer(cfg.SMTP, cfg.EventTimeout, cfg.MailsenderPrefetch)
	if err != nil {
		return nil, fmt.Errorf("mailsender: %w", err)
	}
	srv, err := deps.HealthServer("mailsender", cfg.MailsenderListen.HTTP, cfg, log)
	if err != nil {
		return nil, err
	}
	mails := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_mailsender_mails_total",
		Help: "send_email events handled, by result: sent, duplicate (sent before) or failed (SMTP or database trouble; retried, or dead-lettered on a permanent SMTP refusal).",
	}, []string{"result"})
	srv.Registry().MustRegister(mails)
	return &Service{Server: srv, cfg: cfg, deps: deps, mailer: m, mails: mails, log: log}, nil
}

// Serve consumes and serves HTTP until ctx ends; mails being sent are finished first.
// Each of the cfg.MailsenderPrefetch mails sent at once has its own SMTP session.
func (s *Service) Serve(ctx context.Context) error {
	defer s.mailer.close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Server.Serve(ctx) })
	g.Go(func() error {
		return s.deps.Consume(ctx, s.cfg, events.MailsenderQueueSpec(s.cfg.Queues.Mailsender), broker.ConsumerConfig{
			Prefetch: s.cfg.MailsenderPrefetch,
			Routes:   []broker.Route{broker.On(events.SendEmail, s.send)},
			Verify:   s.cfg.TrustedKeysOf(events.Mailsender), // only dailyaccounting's send_email events are sent
			Metrics:  s.Registry(),
		})
	})
	return g.Wait()
}
