//go:build loadtest

package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/authn"
	atesconfig "github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/tasks"
)

// The auth goals: a call through the auth interceptor with its cache warm costs
// at most 1.15 times the same call with authentication off, and Authenticate itself
// runs at half the bare gRPC rate or better.
const (
	authOverhead     = 1.15
	authenticateRate = 0.5
)

// authPhase measures what authentication costs. GetTask runs on two tasks APIs built in
// this process with tasks.New on the run's database: one authenticating through the
// real auth process with the services' cached client (warmed before measuring), one with
// an Authenticator that answers the admin without any work. Production has no switch
// that turns authentication off, and this phase adds none. Then auth's Authenticate RPC
// is measured against the bare gRPC baseline.
func authPhase(t *testing.T, cfg config, s *system) []result {
	t.Helper()
	ctx := context.Background()
	var (
		admin authn.User
		ids   []string
	)
	resp, err := s.auth.Authenticate(ctx, &authv1.AuthenticateRequest{Token: s.adminToken})
	if err != nil {
		t.Fatalf("authenticate the admin: %v", err)
	}
	admin = authn.User{ID: uuid.MustParse(resp.GetUser().GetId()), Name: resp.GetUser().GetName(), Email: resp.GetUser().GetEmail(), Role: resp.GetUser().GetRole()}
	rows, err := s.db.Query(ctx, "SELECT id::text FROM tasks ORDER BY created_at DESC LIMIT 1000")
	if err != nil {
		t.Fatalf("read task ids: %v", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("read task ids: %v", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil || len(ids) == 0 {
		t.Fatalf("read task ids: %d ids, %v", len(ids), err)
	}

	appCfg, err := atesconfig.LoadFrom(map[string]string{"ATES_DATABASE_URL": s.dbURL})
	if err != nil {
		t.Fatalf("configuration: %v", err)
	}
	client, err := authn.Dial(s.procs["auth"].grpcAddr, appCfg.AuthClient.CacheTTL)
	if err != nil {
		t.Fatalf("auth client: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	// One pool for both: they are measured one after the other, and the database's
	// connections are shared with the services (and, here, other work).
	pool, err := pgutil.Connect(ctx, s.dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	withAuth := inProcessTasks(t, pool, appCfg, client)
	withoutAuth := inProcessTasks(t, pool, appCfg, fixedUser{admin})

	getTask := func(c tasksv1.TaskServiceClient) func(ctx context.Context, w, i int) error {
		return func(ctx context.Context, w, i int) error {
			_, err := c.GetTask(s.asAdmin(ctx), &tasksv1.GetTaskRequest{Id: ids[(w*7919+i)%len(ids)]})
			return err
		}
	}
	// Warm the cache (and both servers' connections) before either is measured.
	for _, c := range []tasksv1.TaskServiceClient{withAuth, withoutAuth} {
		if err := getTask(c)(ctx, 0, 0); err != nil {
			t.Fatalf("warm-up GetTask: %v", err)
		}
	}
	// A-B-B-A halves, so that neither side is measured only while the machine is busier
	// (taskhandler's backlog, other work): each row merges its two halves.
	half := cfg.duration / 2
	noauth := measure("get_task_noauth", cfg.concurrency, half, getTask(withoutAuth))
	auth := measure("get_task_auth", cfg.concurrency, half, getTask(withAuth))
	auth = merge(auth, measure(auth.Name, cfg.concurrency, half, getTask(withAuth)))
	noauth = merge(noauth, measure(noauth.Name, cfg.concurrency, half, getTask(withoutAuth)))
	noauth.Kind, noauth.Baseline = "workload", baseGRPC
	noauth.Note = "tasks.New in this process, an Authenticator that answers the admin at once"
	auth.Kind, auth.Baseline, auth.goal = "workload", noauth.Name, costAtMost(authOverhead, noauth.Name)
	auth.Note = "tasks.New in this process, the services' cached authn client of the auth process"
	if noauth.P50ms > 0 {
		auth.Note += fmt.Sprintf("; p50 %.2f× and p99 %.2f× get_task_noauth's", auth.P50ms/noauth.P50ms, auth.P99ms/max(noauth.P99ms, 0.01))
	}

	authenticate := measure("auth_authenticate", cfg.concurrency, cfg.duration, func(ctx context.Context, _, _ int) error {
		_, err := s.auth.Authenticate(ctx, &authv1.AuthenticateRequest{Token: s.adminToken})
		return err
	})
	authenticate.Kind, authenticate.Baseline = "workload", baseGRPC
	authenticate.goal = atLeastOfBaseline(authenticateRate, baseGRPC)
	return []result{noauth, auth, authenticate}
}

// inProcessTasks serves a tasks API built with tasks.New in this process on pool,
// authenticating with auth, and returns a client of it. It has no broker: GetTask never
// publishes.
func inProcessTasks(t *testing.T, pool *pgxpool.Pool, cfg atesconfig.Config, auth authn.Authenticator) tasksv1.TaskServiceClient {
	t.Helper()
	cfg.TasksListen = atesconfig.Listen{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	api, err := tasks.New(cfg, &app.Deps{Pool: pool, Auth: auth}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("build the tasks API: %v", err)
	}
	servertest.Serve(t, api.Serve)
	return tasksv1.NewTaskServiceClient(servertest.Dial(t, api.Server))
}

// fixedUser is an Authenticator that answers one user for any token, doing nothing else:
// authentication off, for measuring what it costs.
type fixedUser struct{ u authn.User }

func (f fixedUser) Authenticate(context.Context, string) (authn.User, error) { return f.u, nil }
