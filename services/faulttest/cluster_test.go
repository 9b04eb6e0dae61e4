//go:build faulttest

package faulttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ates/ates/services/internal/systemtest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ates/ates/services/mailsender/mailpittest"
)

// businessTZ is the business time zone of the services and of `ates close-day`, which
// closes today: a day may be closed before it ends, and money after the close goes to
// the next open day.
const businessTZ = "UTC"

// group says which proxies a service's connections go through, so that a fault can hit
// the consumers' database without the APIs', and the other way round.
type group int

const (
	apiGroup      group = iota // auth, tasks, accounting, analytics
	consumerGroup              // taskhandler, dailyaccounting, mailsender
)

// serviceGroups lists the services a scenario may start, with their group and whether
// they serve gRPC.
var serviceGroups = map[string]struct {
	group group
	grpc  bool
}{
	"auth":            {apiGroup, true},
	"tasks":           {apiGroup, true},
	"accounting":      {apiGroup, true},
	"analytics":       {apiGroup, true},
	"taskhandler":     {consumerGroup, false},
	"dailyaccounting": {consumerGroup, false},
	"mailsender":      {consumerGroup, false},
}

// cluster is one scenario's private world: a database and a vhost of its own, proxies
// in front of them and of a private Mailpit, and the ates processes.
type cluster struct {
	t      *testing.T
	s      *suite
	name   string
	logDir string

	dbName   string
	dbURL    string // direct, for the suite's own checks and operator commands
	db       *pgxpool.Pool
	vhost    string
	amqpURL  string // direct, for the suite's queue checks
	amqpConn *amqp.Connection
	mail     mailpittest.Server
	pgAPI    *proxy // PostgreSQL of the APIs
	pgCons   *proxy // PostgreSQL of the consumers (taskhandler, dailyaccounting, mailsender)
	pgOps    *proxy // PostgreSQL of operator commands (close-day)
	amqp     *proxy // RabbitMQ of every service
	smtp     *proxy // SMTP of mailsender
	procs    map[string][]*proc
	commands []*proc
	nextCmd  int
	writes   writes
}

// newCluster creates the scenario's database (migrated with `ates migrate`), vhost,
// Mailpit and proxies; everything is removed at cleanup, processes first.
func newCluster(t *testing.T, s *suite) *cluster {
	t.Helper()
	suffix := randomHex(4)
	c := &cluster{t: t, s: s, name: strings.ReplaceAll(t.Name()[strings.LastIndex(t.Name(), "/")+1:], "-", "_"), procs: map[string][]*proc{}, writes: writes{completed: map[string]bool{}}}
	var err error
	c.logDir, err = os.MkdirTemp("", "ates-faulttest-"+c.name+"-")
	if err != nil {
		t.Fatalf("log directory: %v", err)
	}
	t.Logf("logs of %s: %s", c.name, c.logDir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("scenario %s failed; the processes' logs are in %s", c.name, c.logDir)
			return
		}
		if os.Getenv("FAULTTEST_KEEP_LOGS") != "" {
			return
		}
		_ = os.RemoveAll(c.logDir)
	})

	c.createDatabase(t, "ates_fault_"+c.name+"_"+suffix)
	c.createVhost(t, "ates-fault-"+c.name+"-"+suffix)
	c.mail = mailpittest.Start(t, "--quiet")

	pgHost := hostPort(s.pgBase, "5432")
	c.pgAPI = s.proxies.add(t, c.name+"-pg-api", pgHost)
	c.pgCons = s.proxies.add(t, c.name+"-pg-consumers", pgHost)
	c.pgOps = s.proxies.add(t, c.name+"-pg-ops", pgHost)
	c.amqp = s.proxies.add(t, c.name+"-amqp", hostPort(s.amqpBase, "5672"))
	c.smtp = s.proxies.add(t, c.name+"-smtp", c.mail.SMTP)

	// Registered last, so it runs first: no process outlives its scenario.
	t.Cleanup(c.killAll)
	return c
}

func (c *cluster) createDatabase(t *testing.T, name string) {
	t.Helper()
	c.dbName = name
	u := *c.s.pgBase
	u.Path = "/" + name
	c.dbURL = u.String()
	migrate := c.command("migrate", c.dbURL, nil, "migrate")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), c.s.pgBase.String())
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	if err := migrate.wait(ctx); err != nil {
		t.Fatalf("ates migrate of %s: %v; see %s", name, err, migrate.logPath)
	}
	pool, err := pgxpool.New(context.Background(), c.dbURL)
	if err != nil {
		t.Fatalf("connect to %s: %v", name, err)
	}
	t.Cleanup(pool.Close)
	c.db = pool
}

func (c *cluster) createVhost(t *testing.T, vhost string) {
	t.Helper()
	user := c.s.amqpBase.User.Username()
	c.rabbitmqctl(t, "add_vhost", vhost)
	t.Cleanup(func() { c.rabbitmqctl(t, "delete_vhost", vhost) })
	c.rabbitmqctl(t, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
	c.vhost = vhost
	c.amqpURL = c.amqpURLVia(hostPort(c.s.amqpBase, "5672"))
}

func (c *cluster) rabbitmqctl(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.s.rabbitmqctl, append([]string{"-q"}, args...)...).CombinedOutput()
	if err != nil {
		t.Errorf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// amqpURLVia is the scenario's vhost reached through addr.
func (c *cluster) amqpURLVia(addr string) string {
	u := *c.s.amqpBase
	u.Host = addr
	u.Path = "/" + c.vhost
	u.RawPath = "/" + url.PathEscape(c.vhost)
	return u.String()
}

// pgURLVia is the scenario's database reached through addr.
func (c *cluster) pgURLVia(addr string) string {
	u := *c.s.pgBase
	u.Host = addr
	u.Path = "/" + c.dbName
	return u.String()
}

// env is the environment of an ates process whose database is reached at dbURL.
func (c *cluster) env(dbURL string, extra ...string) []string {
	return append(systemtest.BaseEnv(), append([]string{
		"ATES_DATABASE_URL=" + dbURL,
		"ATES_AMQP_URL=" + c.amqpURLVia(c.amqp.Addr()),
		"ATES_SMTP_ADDR=" + c.smtp.Addr(),
		"ATES_BUSINESS_TZ=" + businessTZ,
		// No scheduled close during a run: days close only when a scenario says so.
		"ATES_CLOSE_DAY_SCHEDULE=@every 24h",
		"ATES_OUTBOX_POLL_INTERVAL=500ms",
		// A service restarted during a fault waits for it to end.
		"ATES_STARTUP_TIMEOUT=180s",
		"ATES_SHUTDOWN_TIMEOUT=5s",
	}, extra...)...)
}

// start runs one more replica of service and waits until it is ready.
func (c *cluster) start(service string) *proc {
	c.t.Helper()
	c.spawn(service)
	return c.waitReplica(service, len(c.procs[service])-1)
}

// waitReplica waits until replica i of service is ready. A free port found by
// systemtest.FreeAddr can be taken by another program before the replica binds it; the
// replica then starts again on other ports, in the same slot.
func (c *cluster) waitReplica(service string, i int) *proc {
	c.t.Helper()
	for attempt := 1; ; attempt++ {
		p := c.procs[service][i]
		err := p.waitReady("/readyz", 60*time.Second)
		if err == nil {
			return p
		}
		if attempt < 3 && p.lostPortRace() {
			c.t.Logf("%s lost a race for its port; starting it on other ports", p.name)
			c.procs[service][i] = c.newReplica(service, i+1, attempt+1)
			c.procs[service][i].start(c.t)
			continue
		}
		c.t.Fatal(err)
	}
}

// spawn runs one more replica of service without waiting for it.
func (c *cluster) spawn(service string) *proc {
	c.t.Helper()
	p := c.newReplica(service, len(c.procs[service])+1, 1)
	c.procs[service] = append(c.procs[service], p)
	p.start(c.t)
	return p
}

// newReplica is replica n of service on fresh ports, not started; attempt > 1 names
// its log apart from the attempt that lost its port.
func (c *cluster) newReplica(service string, n, attempt int) *proc {
	t := c.t
	t.Helper()
	info, ok := serviceGroups[service]
	if !ok {
		t.Fatalf("unknown service %q", service)
	}
	upper := strings.ToUpper(service)
	httpAddr, grpcAddr := systemtest.FreeAddr(t), ""
	extra := []string{"ATES_" + upper + "_HTTP_ADDR=" + httpAddr}
	if info.grpc {
		grpcAddr = systemtest.FreeAddr(t)
		extra = append(extra, "ATES_"+upper+"_GRPC_ADDR="+grpcAddr)
	}
	// Replica n of an API asks replica n of auth, if there is one.
	if auths := c.procs["auth"]; len(auths) > 0 && service != "auth" {
		extra = append(extra, "ATES_AUTH_ADDR="+auths[(n-1)%len(auths)].grpcAddr)
	}
	db := c.pgAPI
	if info.group == consumerGroup {
		db = c.pgCons
	}
	log := fmt.Sprintf("%s-%d.log", service, n)
	if attempt > 1 {
		log = fmt.Sprintf("%s-%d.attempt%d.log", service, n, attempt)
	}
	return &proc{
		name:     fmt.Sprintf("%s-%d", service, n),
		bin:      c.s.bin,
		args:     []string{service},
		env:      c.env(c.pgURLVia(db.Addr()), extra...),
		logPath:  filepath.Join(c.logDir, log),
		httpAddr: httpAddr,
		grpcAddr: grpcAddr,
	}
}

// restart starts a killed or stopped replica again, on the same ports.
func (c *cluster) restart(p *proc) {
	c.t.Helper()
	p.start(c.t)
}

// command starts an operator command (migrate, admin create, close-day) against dbURL;
// the caller waits for it.
func (c *cluster) command(name, dbURL string, env []string, args ...string) *proc {
	c.nextCmd++
	p := &proc{
		name:    fmt.Sprintf("%s-%d", name, c.nextCmd),
		bin:     c.s.bin,
		args:    args,
		logPath: filepath.Join(c.logDir, fmt.Sprintf("%s-%d.log", name, c.nextCmd)),
		command: true,
	}
	if c.amqp != nil {
		p.env = c.env(dbURL, env...)
	} else { // migrate, before the proxies exist
		p.env = append(append(systemtest.BaseEnv(), "ATES_DATABASE_URL="+dbURL), env...)
	}
	c.commands = append(c.commands, p)
	p.start(c.t)
	return p
}

// closeDay starts `ates close-day --date day` in the close-day time zone, through the
// operator's database proxy.
func (c *cluster) closeDay(day string) *proc {
	// The later ATES_BUSINESS_TZ wins over the services' one.
	return c.command("close-day", c.pgURLVia(c.pgOps.Addr()), []string{"ATES_BUSINESS_TZ=" + businessTZ}, "close-day", "--date", day)
}

// killAll SIGKILLs every process of the scenario.
func (c *cluster) killAll() {
	for _, ps := range c.procs {
		for _, p := range ps {
			p.kill()
		}
	}
	for _, p := range c.commands {
		p.kill()
	}
}

// unexpectedExits lists the service processes that ended without the suite asking.
func (c *cluster) unexpectedExits() []string {
	var out []string
	for _, ps := range c.procs {
		for _, p := range ps {
			for _, e := range p.unexpectedExits() {
				out = append(out, e+"; see "+p.logPath)
			}
		}
	}
	return out
}

// today is the services' current business day.
func (c *cluster) today() string {
	loc, err := time.LoadLocation(businessTZ)
	if err != nil {
		c.t.Fatalf("load %s: %v", businessTZ, err)
	}
	return time.Now().In(loc).Format(time.DateOnly)
}

func hostPort(u *url.URL, defaultPort string) string {
	if u.Port() != "" {
		return u.Host
	}
	host := u.Hostname()
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, defaultPort)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
