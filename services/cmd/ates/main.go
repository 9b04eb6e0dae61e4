// Command ates runs the aTES services: one subcommand per service, all of them in one
// process, and the operator's commands (migrate, admin create, healthcheck).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // business time zones work in images without zoneinfo

	"golang.org/x/sync/errgroup"

	"github.com/ates/ates/services/accounting"
	"github.com/ates/ates/services/analytics"
	"github.com/ates/ates/services/auth"
	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/mailsender"
	"github.com/ates/ates/services/taskhandler"
	"github.com/ates/ates/services/tasks"
)

// services maps each subcommand to the service it runs; `all` runs every one of them.
var services = map[string]func(context.Context, config.Config, *slog.Logger) error{
	"accounting":      accounting.Run,
	"analytics":       analytics.Run,
	"auth":            auth.Run,
	"dailyaccounting": dailyaccounting.Run,
	"mailsender":      mailsender.Run,
	"taskhandler":     taskhandler.Run,
	"tasks":           tasks.Run,
}

const usage = `usage: ates <command> [flags]

services (each serves until SIGINT or SIGTERM):
  all              every service in one process
  %s

operator commands:
  migrate          create the database if needed, apply pending migrations, exit
  admin create     create an admin without a token: --name N --email E --photo-hash H
  close-day        close a past business day, and any earlier open day: --date YYYY-MM-DD
  dlq              list, show, replay or purge dead letters: dlq list --queue ates.taskhandler
  broker setup     create each service's own broker user and the exchanges and queues
  broker definitions  the same as a RabbitMQ definitions document, for load_definitions
  verify           recompute the read models from the audit log and tasks; exit 1 on any difference
  healthcheck URL  exit 0 if URL answers HTTP 200 (container health checks)

Configuration comes from ATES_* environment variables; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ates:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(os.Stderr, usage, strings.Join(serviceNames(), "\n  "))
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	if cmd == "healthcheck" {
		return healthcheck(ctx, args)
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := newLogger(cfg)
	slog.SetDefault(log)

	switch cmd {
	case "all":
		return runAll(ctx, cfg, log)
	case "migrate":
		return migrate(ctx, cfg, log)
	case "admin":
		return admin(ctx, cfg, args, stdout)
	case "close-day":
		return closeDay(ctx, cfg, log, args)
	case "dlq":
		return dlq(ctx, cfg, args, stdin, stdout)
	case "broker":
		return brokerCmd(ctx, cfg, args, stdout)
	case "verify":
		if len(args) > 0 {
			return errors.New("usage: ates verify")
		}
		return dailyaccounting.VerifyCommand(ctx, cfg, log, stdout)
	}
	svc, ok := services[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q (try ates help)", cmd)
	}
	return svc(ctx, cfg, log)
}

func serviceNames() []string {
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// runAll runs every service; when one fails, the others are stopped too.
func runAll(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, name := range serviceNames() {
		svc := services[name]
		g.Go(func() error {
			if err := svc(ctx, cfg, log); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func migrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	created, err := pgutil.EnsureDatabase(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	if created {
		log.Info("database created")
	}
	pool, err := pgutil.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return pgutil.Migrate(ctx, pool, log)
}

func admin(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: ates admin create --name N --email E --photo-hash H")
	}
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	name := fs.String("name", "", "the admin's display name")
	email := fs.String("email", "", "the admin's email address")
	photoHash := fs.String("photo-hash", "", "the photo hash the admin logs in with")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	id, err := auth.CreateAdmin(ctx, cfg, *name, *email, *photoHash)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "admin created: id=%s email=%s\n", id, *email)
	return nil
}

func closeDay(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("close-day", flag.ContinueOnError)
	date := fs.String("date", "", "the business day to close, YYYY-MM-DD; it must have ended")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *date == "" || fs.NArg() > 0 {
		return errors.New("usage: ates close-day --date YYYY-MM-DD")
	}
	return dailyaccounting.CloseDayCommand(ctx, cfg, log, *date)
}

func healthcheck(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: ates healthcheck URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s: %s", args[0], resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func newLogger(cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
