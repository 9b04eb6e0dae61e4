package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ates/ates/services/internal/pgutil"
)

// migrateCmd is `ates migrate [up|status|down]`; without a subcommand it is up, which
// `make run` and the test clusters use.
func migrateCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	up := withConfig(stdin, stdout, stderr, migrateUp)
	c := &cobra.Command{
		Use:   "migrate [up|status|down]",
		Short: "create the database if needed, apply pending migrations, exit (migrate status, migrate down)",
		Args:  cobra.NoArgs,
		RunE:  up,
	}
	c.AddCommand(&cobra.Command{
		Use: "up", Short: "create the database if needed and apply every pending migration (the default)",
		Args: cobra.NoArgs, RunE: up,
	})
	c.AddCommand(&cobra.Command{
		Use: "status", Short: "list every migration with when it was applied, or pending",
		Args: cobra.NoArgs, RunE: withConfig(stdin, stdout, stderr, migrateStatus),
	})
	var yes bool
	down := &cobra.Command{
		Use:   "down",
		Short: "roll the newest applied migration back (one version); asks first unless --yes",
		Long: "Roll the newest applied migration back, one version, running its Down section.\n" +
			"What that migration added (tables, columns, rows) is dropped for good, so it asks\n" +
			"first unless --yes. Stop the services first: they expect the newest schema.",
		Args: cobra.NoArgs,
		RunE: withConfig(stdin, stdout, stderr, func(ctx context.Context, e env, _ []string) error {
			return migrateDown(ctx, e, yes)
		}),
	}
	down.Flags().BoolVar(&yes, "yes", false, "do not ask")
	c.AddCommand(down)
	return c
}

func migrateUp(ctx context.Context, e env, _ []string) error {
	created, err := pgutil.EnsureDatabase(ctx, e.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	if created {
		e.log.Info("database created")
	}
	pool, err := pgutil.Connect(ctx, e.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return pgutil.Migrate(ctx, pool, e.log)
}

func migrateStatus(ctx context.Context, e env, _ []string) error {
	pool, err := pgutil.Connect(ctx, e.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	list, err := pgutil.MigrationStatus(ctx, pool)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tFILE\tAPPLIED")
	pending := 0
	for _, m := range list {
		applied := m.AppliedAt.UTC().Format(time.RFC3339)
		if m.AppliedAt.IsZero() {
			applied, pending = "pending", pending+1
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.File, applied)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%d applied, %d pending\n", len(list)-pending, pending)
	return err
}

func migrateDown(ctx context.Context, e env, yes bool) error {
	pool, err := pgutil.Connect(ctx, e.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	list, err := pgutil.MigrationStatus(ctx, pool)
	if err != nil {
		return err
	}
	var newest *pgutil.Migration
	for i := range list {
		if !list[i].AppliedAt.IsZero() && (newest == nil || list[i].AppliedAt.After(newest.AppliedAt)) {
			newest = &list[i]
		}
	}
	if newest == nil {
		fmt.Fprintln(e.stdout, "no migration is applied; nothing rolled back")
		return nil
	}
	if !yes && !confirm(e.stdin, e.stdout, fmt.Sprintf("Roll back migration %d (%s)? What it added is dropped for good. Type yes: ", newest.Version, newest.File)) {
		return errors.New("migrate down: not confirmed; nothing rolled back")
	}
	m, ok, err := pgutil.MigrateDown(ctx, pool)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(e.stdout, "no migration is applied; nothing rolled back")
		return nil
	}
	_, err = fmt.Fprintf(e.stdout, "rolled back %d (%s)\n", m.Version, m.File)
	return err
}
