// Command ates runs the aTES services: one subcommand per service, all of them in one
// process, and the operator's commands (migrate, admin create, close-day, dlq, broker,
// verify, healthcheck).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // business time zones work in images without zoneinfo

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ates/ates/services/accounting"
	"github.com/ates/ates/services/analytics"
	"github.com/ates/ates/services/auth"
	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/telemetry"
	"github.com/ates/ates/services/mailsender"
	"github.com/ates/ates/services/taskhandler"
	"github.com/ates/ates/services/tasks"
)

// services are the services ates runs, each under its own subcommand (its Spec's Name),
// sorted by name; `all` runs every one of them.
var services = []app.Spec{
	accounting.Spec,
	analytics.Spec,
	auth.Spec,
	dailyaccounting.Spec,
	mailsender.Spec,
	taskhandler.Spec,
	tasks.Spec,
}

// errNoCommand is `ates` without a command: the help goes to stderr and ates exits 2.
var errNoCommand = errors.New("no command")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, errNoCommand) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ates:", err)
		os.Exit(1)
	}
}

// run is execute with the log and the warnings on os.Stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	return execute(ctx, args, stdin, stdout, os.Stderr)
}

// execute runs the command args names; the log, warnings and errors of arguments go to
// stderr, what the command prints (help included) to stdout.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && strings.HasPrefix(err.Error(), "unknown command") {
		return fmt.Errorf("%w (see ates help)", err)
	}
	return err
}

// env is what every command that reads the settings gets: the configuration, the logger
// made from it, and the streams.
type env struct {
	cfg            config.Config
	log            *slog.Logger
	stdin          io.Reader
	stdout, stderr io.Writer
}

// withConfig makes a command's RunE that reads the settings first, warning about every
// ATES_* variable no setting reads.
//
//nolint:contextcheck // the RunE it makes takes the context from cobra's cmd.Context()
func withConfig(stdin io.Reader, stdout, stderr io.Writer, fn func(context.Context, env, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, err := config.Load()
		log := slog.New(slog.NewTextHandler(stderr, nil))
		if err == nil {
			log = newLogger(cfg, stderr)
			slog.SetDefault(log)
		}
		for _, u := range config.UnknownVars(os.Environ()) {
			if u.DidYouMean != "" {
				log.WarnContext(cmd.Context(), "unknown setting ignored", "variable", u.Name, "did_you_mean", u.DidYouMean)
			} else {
				log.WarnContext(cmd.Context(), "unknown setting ignored", "variable", u.Name)
			}
		}
		if err != nil {
			return err
		}
		return fn(cmd.Context(), env{cfg: cfg, log: log, stdin: stdin, stdout: stdout, stderr: stderr}, args)
	}
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ates",
		Short: "aTES: the task tracker's services and operator commands",
		Long: "ates runs the aTES services (each serves until SIGINT or SIGTERM) and the operator's commands.\n\n" +
			"Configuration comes from ATES_* environment variables; see README.md. An ATES_*\n" +
			"variable that no setting reads is warned about when a command starts.",
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(stderr)
			_ = cmd.Help()
			return errNoCommand
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("ates {{.Version}}\n")
	root.AddGroup(&cobra.Group{ID: "services", Title: "Services:"}, &cobra.Group{ID: "operator", Title: "Operator commands:"})
	root.SetHelpCommandGroupID("operator")
	root.SetCompletionCommandGroupID("operator")

	root.AddCommand(&cobra.Command{
		Use: "all", Short: "every service in one process", GroupID: "services", Args: cobra.NoArgs,
		RunE: withConfig(stdin, stdout, stderr, func(ctx context.Context, e env, _ []string) error {
			return traced(ctx, "ates", e.log, func() error { return runAll(ctx, e.cfg, e.log) })
		}),
	})
	for _, spec := range services {
		root.AddCommand(&cobra.Command{
			Use: spec.Name, Short: "the " + spec.Name + " service", GroupID: "services", Args: cobra.NoArgs,
			RunE: withConfig(stdin, stdout, stderr, func(ctx context.Context, e env, _ []string) error {
				return traced(ctx, "ates-"+spec.Name, e.log, func() error { return app.Run(ctx, e.cfg, e.log, spec) })
			}),
		})
	}
	for _, c := range []*cobra.Command{
		migrateCmd(stdin, stdout, stderr),
		adminCmd(stdin, stdout, stderr),
		closeDayCmd(stdin, stdout, stderr),
		dlqCmd(stdin, stdout, stderr),
		brokerCommand(stdin, stdout, stderr),
		{
			Use: "verify", Short: "recompute the read models from the audit log and tasks; exit 1 on any difference",
			Args: cobra.NoArgs,
			RunE: withConfig(stdin, stdout, stderr, func(ctx context.Context, e env, _ []string) error {
				return dailyaccounting.VerifyCommand(ctx, e.cfg, e.log, e.stdout)
			}),
		},
		{
			Use: "healthcheck URL", Short: "exit 0 if URL answers HTTP 200 (container health checks)",
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return healthcheck(cmd.Context(), args[0]) },
		},
		{
			Use: "version", Short: "print the version and VCS revision ates was built from", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "ates", versionString())
				return err
			},
		},
	} {
		c.GroupID = "operator"
		root.AddCommand(c)
	}
	return root
}

// parent is a command that only groups subcommands: without one, or with an unknown
// one, it fails and says which there are.
func parent(c *cobra.Command) *cobra.Command {
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		var subs []string
		for _, s := range cmd.Commands() {
			subs = append(subs, s.Name())
		}
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q: use one of %s", args[0], cmd.CommandPath(), strings.Join(subs, ", "))
		}
		return fmt.Errorf("%s needs a subcommand: %s (see %s --help)", cmd.CommandPath(), strings.Join(subs, ", "), cmd.CommandPath())
	}
	return c
}

// metricsServedBy is the service whose HTTP port serves the one /metrics of `ates all`;
// the other services' /metrics answer 404 and point there.
const metricsServedBy = "auth"

// runAll runs every service; when one fails, the others are stopped too. Their metrics
// are one registry, served once (see metricsServedBy).
func runAll(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	ctx = server.WithSharedMetrics(ctx, server.NewSharedMetrics(metricsServedBy))
	g, ctx := errgroup.WithContext(ctx)
	for _, spec := range services {
		g.Go(func() error {
			if err := app.Run(ctx, cfg, log, spec); err != nil {
				return fmt.Errorf("%s: %w", spec.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func adminCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var name, email, photoHash string
	create := &cobra.Command{
		Use:   "create --name N --email E --photo-hash H",
		Short: "create an admin without a token (the first admin)",
		Args:  cobra.NoArgs,
		RunE: withConfig(stdin, stdout, stderr, func(ctx context.Context, e env, _ []string) error {
			id, err := auth.CreateAdmin(ctx, e.cfg, name, email, photoHash)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "admin created: id=%s email=%s\n", id, email)
			return nil
		}),
	}
	create.Flags().StringVar(&name, "name", "", "the admin's display name")
	create.Flags().StringVar(&email, "email", "", "the admin's email address")
	create.Flags().StringVar(&photoHash, "photo-hash", "", "the photo hash the admin logs in with")
	admin := parent(&cobra.Command{Use: "admin", Short: "create an admin: admin create --name N --email E --photo-hash H"})
	admin.AddCommand(create)
	return admin
}

func closeDayCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var date string
	c := &cobra.Command{
		Use:   "close-day --date YYYY-MM-DD",
		Short: "close a past business day, and any earlier open day",
		Args:  cobra.NoArgs,
		RunE: withConfig(stdin, stdout, stderr, func(ctx context.Context, e env, _ []string) error {
			if date == "" {
				return errors.New("usage: ates close-day --date YYYY-MM-DD")
			}
			return dailyaccounting.CloseDayCommand(ctx, e.cfg, e.log, date)
		}),
	}
	c.Flags().StringVar(&date, "date", "", "the business day to close, YYYY-MM-DD; it must have ended")
	return c
}

func dlqCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	_, long, _ := strings.Cut(dlqUsage, "\n\n")
	c := parent(&cobra.Command{
		Use:   "dlq list|show|replay|purge --queue QUEUE",
		Short: "list, show, replay or purge dead letters: dlq list --queue ates.taskhandler",
		Long:  long,
	})
	for _, verb := range []struct{ name, short string }{
		{"list", "the dead letters of QUEUE, oldest first"},
		{"show", "one dead letter in full (--id): headers and the decoded payload"},
		{"replay", "publish dead letters (--id, or all) again under their original routing key and event id"},
		{"purge", "delete dead letters (--id, or all) for good; asks first unless --yes"},
	} {
		var o dlqOptions
		v := &cobra.Command{
			Use: verb.name + " --queue QUEUE", Short: verb.short, Args: cobra.NoArgs,
			RunE: withConfig(stdin, stdout, stderr, func(ctx context.Context, e env, _ []string) error {
				return dlq(ctx, e.cfg, verb.name, o, e.stdin, e.stdout)
			}),
		}
		v.Flags().StringVar(&o.queue, "queue", "", "the consumer's queue (ates.taskhandler, ates.mailsender) or its .dead queue")
		if verb.name != "list" {
			v.Flags().StringVar(&o.ids, "id", "", "event ids, comma-separated")
		}
		if verb.name == "list" {
			v.Flags().IntVar(&o.limit, "limit", 100, "at most this many")
		}
		if verb.name == "purge" {
			v.Flags().BoolVar(&o.yes, "yes", false, "do not ask")
		}
		c.AddCommand(v)
	}
	return c
}

func brokerCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	_, long, _ := strings.Cut(brokerUsage, "\n\n")
	c := parent(&cobra.Command{
		Use:   "broker setup|definitions",
		Short: "create each service's broker user and the exchanges and queues, or print them as definitions",
		Long:  long,
	})
	for _, verb := range []struct{ name, short string }{
		{"setup", "create each service's own broker user and the exchanges and queues"},
		{"definitions", "the same as a RabbitMQ definitions document, for load_definitions"},
	} {
		var o brokerOptions
		v := &cobra.Command{
			Use: verb.name, Short: verb.short, Long: long, Args: cobra.NoArgs,
			RunE: withConfig(stdin, stdout, stderr, func(ctx context.Context, e env, _ []string) error {
				return brokerCmd(ctx, e.cfg, verb.name, o, e.stdout)
			}),
		}
		v.Flags().BoolVar(&o.admin, "admin", false, "also create the user of ATES_AMQP_URL as an administrator")
		if verb.name == "setup" {
			v.Flags().StringVar(&o.management, "management", "", "the management plugin's URL (http://rabbitmq:15672), instead of rabbitmqctl")
		} else {
			v.Flags().StringVar(&o.out, "out", "", "write to this file (mode 0600: it holds password hashes)")
		}
		c.AddCommand(v)
	}
	return c
}

func healthcheck(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
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
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// newLogger logs in the configured format; a line logged inside a request or an event
// carries its trace_id and span_id.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
}

// traceFlushTimeout bounds the export of the spans left when a service stops.
const traceFlushTimeout = 5 * time.Second

// traced runs a service (or all of them) with tracing set up from the OTEL_* variables
// as service, and flushes the spans left once it stopped. Under `ates all` the services
// share the process and so the name "ates"; their spans tell them apart by the RPC,
// queue and instrumentation scope.
func traced(ctx context.Context, service string, log *slog.Logger, run func() error) error {
	shutdown, err := telemetry.Setup(ctx, service, server.Version)
	if err != nil {
		return err
	}
	if telemetry.Enabled(os.Getenv) {
		log.Info("exporting traces over OTLP", "protocol", telemetry.Protocol(os.Getenv))
	}
	err = run()
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), traceFlushTimeout)
	defer cancel()
	if ferr := shutdown(flushCtx); ferr != nil {
		log.Warn("flush traces", "err", ferr)
	}
	return err
}
