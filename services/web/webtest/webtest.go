// Package webtest runs the whole system behind the web dashboard for tests: auth, the
// tasks API with taskhandler, accounting, and analytics serving the dashboard at "/",
// each on a loopback port of its own, on a private database and broker exchange.
package webtest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/ates/ates/services/accounting"
	"github.com/ates/ates/services/analytics"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/ledgertest"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/internal/systemtest"
	"github.com/ates/ates/services/tasks/taskstest"
)

// Env is the running system.
type Env struct {
	*taskstest.Env
	// URL is the dashboard's base URL, "http://127.0.0.1:<port>" (no trailing slash).
	URL string
	// AccountingHTTP and AnalyticsHTTP are those services' HTTP addresses.
	AccountingHTTP, AnalyticsHTTP string
	// Book writes ledger rows (fees, rewards) straight into the database, for seeding.
	Book *ledgertest.Book
}

// Start runs every service the dashboard calls until the test ends. The business time
// zone is UTC.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith is Start with auth's configuration changed by editAuth (nil: the defaults).
func StartWith(t testing.TB, editAuth func(*config.Config)) *Env {
	t.Helper()
	env := &Env{Env: taskstest.Start(t, taskstest.Options{EditAuth: editAuth})}
	env.Book = ledgertest.New(t, env.Pool)
	log := slog.New(slog.DiscardHandler)
	cfg := env.Config
	cfg.BusinessTZ = time.UTC

	cfg.AccountingListen = config.Listen{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	acc, err := accounting.New(cfg, &app.Deps{Pool: env.Pool, Auth: env.Authenticator(t)}, log)
	if err != nil {
		t.Fatalf("build accounting: %v", err)
	}
	servertest.Serve(t, acc.Serve)
	env.AccountingHTTP = acc.HTTPAddr()

	// The dashboard calls analytics' own REST API, on the port analytics.New binds:
	// pick a free port first (and another if someone takes it meanwhile).
	var an *analytics.Service
	for attempt := 0; ; attempt++ {
		addr := systemtest.FreeAddr(t)
		cfg.Web = config.Web{
			AuthURL:       "http://" + env.HTTPAddr,
			TasksURL:      "http://" + env.TasksHTTP,
			AccountingURL: "http://" + env.AccountingHTTP,
			AnalyticsURL:  "http://" + addr,
		}
		cfg.AnalyticsListen = config.Listen{GRPC: "127.0.0.1:0", HTTP: addr}
		an, err = analytics.New(cfg, &app.Deps{Pool: env.Pool, Auth: env.Authenticator(t)}, log)
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("build analytics: %v", err)
		}
	}
	servertest.Serve(t, an.Serve)
	env.AnalyticsHTTP = an.HTTPAddr()
	env.URL = "http://" + env.AnalyticsHTTP
	return env
}
