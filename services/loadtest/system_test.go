//go:build loadtest

package loadtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ates/ates/services/internal/systemtest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	analyticsv1 "github.com/ates/ates/gen/analytics/v1"
	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/pgutil"
)

// services are started in this order, one process each; the first four serve gRPC.
var services = []string{"auth", "tasks", "accounting", "analytics", "taskhandler", "dailyaccounting", "mailsender"}

// system is the run's private world: a database and a vhost of its own and one ates
// process per service, with gRPC clients of the APIs and a logged-in admin.
type system struct {
	bin, logDir    string
	dbURL, amqpURL string
	db             *pgxpool.Pool
	procs          map[string]*proc
	tasks          tasksv1.TaskServiceClient
	auth           authv1.AuthServiceClient
	accounting     accountingv1.AccountingServiceClient
	analytics      analyticsv1.AnalyticsServiceClient
	adminToken     string
	workers        int
	seeded         []string // workers with money today once seedPhase ran, for GetBalance
}

// startSystem builds ates, creates the database (with `ates migrate`) and vhost, starts
// every service and seeds an admin and workers. Everything is removed at cleanup,
// processes first.
func startSystem(t *testing.T, workers int) *system {
	t.Helper()
	pgBase, err := url.Parse(pgtest.URL())
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	s := &system{bin: systemtest.BuildAtes(t), procs: map[string]*proc{}, workers: workers}
	s.logDir, err = os.MkdirTemp("", "ates-loadtest-")
	if err != nil {
		t.Fatalf("log directory: %v", err)
	}
	t.Logf("logs: %s", s.logDir)
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("LOADTEST_KEEP_LOGS") == "" {
			_ = os.RemoveAll(s.logDir)
		}
	})
	suffix := systemtest.RandomSuffix()

	// The database: dropped at cleanup, after every process is gone.
	dbName := "ates_load_" + suffix
	u := *pgBase
	u.Path = "/" + dbName
	s.dbURL = u.String()
	t.Cleanup(func() { dropDatabase(t, pgBase.String(), dbName) })
	migrate := startProc(t, s.bin, s.logDir, "migrate", append(systemtest.BaseEnv(), "ATES_DATABASE_URL="+s.dbURL), "migrate")
	if err := migrate.wait(60 * time.Second); err != nil {
		t.Fatalf("ates migrate: %v; see %s", err, migrate.logPath)
	}
	s.db, err = pgutil.Connect(context.Background(), s.dbURL)
	if err != nil {
		t.Fatalf("connect to %s: %v", dbName, err)
	}
	t.Cleanup(s.db.Close)

	// The vhost: deleted at cleanup, after every process is gone.
	s.amqpURL = systemtest.PrivateVhost(t, broker.TestURL(), "ates-load-"+suffix)

	for _, name := range services {
		s.start(t, name)
	}
	s.dial(t)
	s.seed(t)
	return s
}

// env is the environment of every ates process.
func (s *system) env(extra ...string) []string {
	smtp := os.Getenv("TEST_SMTP_ADDR")
	if smtp == "" {
		smtp = "127.0.0.1:1025"
	}
	return append(systemtest.BaseEnv(), append([]string{
		"ATES_DATABASE_URL=" + s.dbURL,
		"ATES_AMQP_URL=" + s.amqpURL,
		"ATES_SMTP_ADDR=" + smtp,
		// No scheduled close during a run, so no mail either.
		"ATES_CLOSE_DAY_SCHEDULE=@every 24h",
		// /debug/pprof, for LOADTEST_PROFILE.
		"ATES_PPROF=true",
		"ATES_SHUTDOWN_TIMEOUT=5s",
		// LOADTEST_WORKERS registrations come from one address, and may be more than
		// the abuse limit lets one address register.
		"ATES_AUTH_REGISTER_PER_ADDR_BURST=0",
	}, extra...)...)
}

// start runs one service on free ports and waits until it is ready.
func (s *system) start(t *testing.T, name string) {
	t.Helper()
	upper := strings.ToUpper(name)
	httpAddr := systemtest.FreeAddr(t)
	extra := []string{"ATES_" + upper + "_HTTP_ADDR=" + httpAddr}
	grpcAddr := ""
	if name == "auth" || name == "tasks" || name == "accounting" || name == "analytics" {
		grpcAddr = systemtest.FreeAddr(t)
		extra = append(extra, "ATES_"+upper+"_GRPC_ADDR="+grpcAddr)
	}
	if auth := s.procs["auth"]; auth != nil {
		extra = append(extra, "ATES_AUTH_ADDR="+auth.grpcAddr)
	}
	p := startProc(t, s.bin, s.logDir, name, s.env(extra...), name)
	p.httpAddr, p.grpcAddr = httpAddr, grpcAddr
	s.procs[name] = p
	p.waitReady(t, 60*time.Second)
}

// dial connects a gRPC client to each API.
func (s *system) dial(t *testing.T) {
	t.Helper()
	conn := func(name string) *grpc.ClientConn {
		cc, err := grpc.NewClient(s.procs[name].grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatalf("dial %s: %v", name, err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	s.auth = authv1.NewAuthServiceClient(conn("auth"))
	s.tasks = tasksv1.NewTaskServiceClient(conn("tasks"))
	s.accounting = accountingv1.NewAccountingServiceClient(conn("accounting"))
	s.analytics = analyticsv1.NewAnalyticsServiceClient(conn("analytics"))
}

// seed creates the first admin with `ates admin create`, logs it in and registers the
// workers tasks are assigned to.
func (s *system) seed(t *testing.T) {
	t.Helper()
	photo := "admin-photo-" + systemtest.RandomSuffix()
	admin := startProc(t, s.bin, s.logDir, "admin-create", s.env(), "admin", "create",
		"--name", "Load Admin", "--email", "admin@loadtest.example", "--photo-hash", photo)
	if err := admin.wait(60 * time.Second); err != nil {
		t.Fatalf("ates admin create: %v; see %s", err, admin.logPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := s.auth.Login(ctx, &authv1.LoginRequest{PhotoHash: photo})
	if err != nil {
		t.Fatalf("login as admin: %v", err)
	}
	s.adminToken = resp.GetToken()
	for i := range s.workers {
		name := fmt.Sprintf("worker%d", i+1)
		if _, err := s.auth.Register(ctx, &authv1.RegisterRequest{
			Name: name, Email: name + "@loadtest.example", Role: authv1.Role_ROLE_WORKER, PhotoHash: name + "-photo-" + photo,
		}); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
}

// asAdmin carries the admin's token.
func (s *system) asAdmin(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.adminToken)
}

// storedTasks counts the tasks in the database.
func (s *system) storedTasks(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRow(ctx, "SELECT count(*) FROM tasks").Scan(&n)
	return n, err
}

func dropDatabase(t *testing.T, baseURL, name string) {
	conn, err := pgx.Connect(context.Background(), baseURL)
	if err != nil {
		t.Logf("drop database %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Logf("drop database %s: %v", name, err)
	}
}
