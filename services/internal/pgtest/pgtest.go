// Package pgtest gives each test its own freshly migrated PostgreSQL database, cloned
// from a template that is migrated once per schema version, so tests run in parallel
// against the real server.
package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/sql/migrations"
)

// URL is the server tests use: TEST_DATABASE_URL, or the local server.
func URL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// NewDB creates an empty migrated database for this test, dropped at cleanup, and
// returns a pool on it and its URL (for code under test that connects by itself).
func NewDB(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := context.Background()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx) })
	if templateErr != nil {
		t.Fatalf("prepare template database: %v", templateErr)
	}

	admin, err := pgx.Connect(ctx, URL())
	if err != nil {
		t.Fatalf("connect to test server %s: %v", URL(), err)
	}
	defer admin.Close(ctx)

	name := "ates_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, templateName)); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	dbURL := withDatabase(t, URL(), name)
	pool, err := pgutil.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		conn, err := pgx.Connect(ctx, URL())
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return pool, dbURL
}

// ensureTemplate creates and migrates the template for the current migrations once, even
// when several test binaries race to do it (an advisory lock serialises them).
func ensureTemplate(ctx context.Context) (string, error) {
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "ates_template_" + sum[:16]

	conn, err := pgx.Connect(ctx, URL())
	if err != nil {
		return "", fmt.Errorf("connect to test server %s: %w", URL(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('ates_test_template'))"); err != nil {
		return "", fmt.Errorf("lock template: %w", err)
	}
	defer conn.Exec(ctx, "SELECT pg_advisory_unlock(hashtext('ates_test_template'))") //nolint:errcheck // released with the connection anyway

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up template: %w", err)
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", building)); err != nil {
		return "", fmt.Errorf("drop half-built template: %w", err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s", building)); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	u, err := url.Parse(URL())
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", URL(), err)
	}
	u.Path = "/" + building
	pool, err := pgutil.Connect(ctx, u.String())
	if err != nil {
		return "", err
	}
	err = pgutil.Migrate(ctx, pool, slog.New(slog.DiscardHandler))
	pool.Close()
	if err != nil {
		return "", err
	}
	// Renaming last makes a half-migrated template impossible to pick up.
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", building, name)); err != nil {
		return "", fmt.Errorf("publish template: %w", err)
	}
	return name, nil
}

func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func withDatabase(t testing.TB, base, name string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	u.Path = "/" + name
	return u.String()
}
