// Package pgutil opens the PostgreSQL pool, applies the schema migrations and classifies
// driver errors, so that every service does these the same way.
package pgutil

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/ates/ates/services/internal/apperr"
	"github.com/ates/ates/sql/migrations"
)

// ErrNoDatabase is what Connect returns when the server answers but the database in the
// URL does not exist (SQLSTATE 3D000): waiting will not make it appear.
var ErrNoDatabase = errors.New("database does not exist")

// Connect opens a pool and checks that the database answers. A database that does not
// exist gives ErrNoDatabase with the commands that create it.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.ConnConfig.Tracer = queryTracer()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		c := cfg.ConnConfig
		if ConstraintOf(err, "3D000") != "" {
			return nil, fmt.Errorf("%w: %q on %s:%d: create it with `ates migrate` (which also applies the schema) or `createdb -h %s -p %d -U %s %s`",
				ErrNoDatabase, c.Database, c.Host, c.Port, c.Host, c.Port, c.User, c.Database)
		}
		return nil, fmt.Errorf("reach database %s:%d: %w", c.Host, c.Port, err)
	}
	return pool, nil
}

// SchemaVersions returns the schema version recorded in the database (0 for a database
// never migrated) and the highest migration this binary embeds.
func SchemaVersions(ctx context.Context, pool *pgxpool.Pool) (current, want int64, err error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		return 0, 0, fmt.Errorf("load migrations: %w", err)
	}
	current, want, err = provider.GetVersions(ctx)
	if ConstraintOf(err, "42P01") != "" { // no goose_db_version table: never migrated
		return 0, want, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	return current, want, nil
}

// CheckSchema fails while the database's schema is behind this binary's migrations,
// saying which versions and what to run. A schema ahead of the binary passes: migrations
// only add, and an older binary keeps running during a rolling upgrade.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) error {
	current, want, err := SchemaVersions(ctx, pool)
	if err != nil {
		return err
	}
	if current < want {
		return fmt.Errorf("schema at version %d, this binary needs %d: run ates migrate", current, want)
	}
	return nil
}

// Migrate applies every pending goose migration and logs what it did.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return migrate(ctx, db, log)
}

func migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	provider, err := migrationProvider(db)
	if err != nil {
		return err
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	for _, r := range results {
		log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	version, err := provider.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	log.Info("schema up to date", "version", version)
	return nil
}

func migrationProvider(db *sql.DB) (*goose.Provider, error) {
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return provider, nil
}

// Migration is one schema migration and whether the database has it.
type Migration struct {
	Version int64
	File    string
	// AppliedAt is when it was applied; zero while it is pending.
	AppliedAt time.Time
}

// MigrationStatus lists every migration, oldest first, with when it was applied.
func MigrationStatus(ctx context.Context, pool *pgxpool.Pool) ([]Migration, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := migrationProvider(db)
	if err != nil {
		return nil, err
	}
	status, err := provider.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read migration status: %w", err)
	}
	list := make([]Migration, 0, len(status))
	for _, s := range status {
		m := Migration{Version: s.Source.Version, File: s.Source.Path}
		if s.State == goose.StateApplied {
			m.AppliedAt = s.AppliedAt
		}
		list = append(list, m)
	}
	return list, nil
}

// MigrateDown rolls the newest applied migration back and returns it; ok is false when
// none is applied.
func MigrateDown(ctx context.Context, pool *pgxpool.Pool) (_ Migration, ok bool, _ error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := migrationProvider(db)
	if err != nil {
		return Migration{}, false, err
	}
	r, err := provider.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return Migration{}, false, nil
	}
	if err != nil {
		return Migration{}, false, fmt.Errorf("roll back migration: %w", err)
	}
	return Migration{Version: r.Source.Version, File: r.Source.Path}, true, nil
}

// ErrNotFound is what stores return for a missing row: apperr.ErrNotFound, which the gRPC
// layer maps without importing this package.
var ErrNotFound = apperr.ErrNotFound

// ErrAlreadyExists is what stores return for a unique violation: apperr.ErrAlreadyExists.
var ErrAlreadyExists = apperr.ErrAlreadyExists

// Translate maps driver errors to ErrNotFound and ErrAlreadyExists (keeping the cause in
// the chain) and returns other errors unchanged.
func Translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case IsUniqueViolation(err):
		return fmt.Errorf("%w: %w", ErrAlreadyExists, err)
	}
	return err
}

// IsUniqueViolation reports whether err is SQLSTATE 23505.
func IsUniqueViolation(err error) bool {
	return ConstraintOf(err, "23505") != ""
}

// ConstraintOf returns the name of the constraint that err with the given SQLSTATE broke,
// or "" when err is not such an error.
func ConstraintOf(err error, sqlstate string) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstate {
		if pgErr.ConstraintName == "" {
			return "?"
		}
		return pgErr.ConstraintName
	}
	return ""
}

// IsUnavailable reports whether err says the database cannot be reached or is not
// serving right now (apperr.IsUnavailable), or is a failed connect of the driver.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) || apperr.IsUnavailable(err)
}

// InTx runs fn in a transaction, committing when it returns nil and rolling back otherwise.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}

// EnsureDatabase creates the database named in url if it does not exist yet, connecting
// to the server's maintenance database to do so. It returns whether it created it.
func EnsureDatabase(ctx context.Context, url string) (bool, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return false, fmt.Errorf("parse database url: %w", err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("reach database server %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return false, nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	switch {
	case ConstraintOf(err, "42501") != "": // insufficient_privilege: the user lacks CREATEDB
		return false, fmt.Errorf("create database %s: %w; have a superuser run `createdb -h %s -p %d -O %s %s`", name, err, cfg.Host, cfg.Port, cfg.User, name)
	case err != nil && ConstraintOf(err, "42P04") == "":
		return false, fmt.Errorf("create database %s: %w", name, err)
	}
	return true, nil
}
