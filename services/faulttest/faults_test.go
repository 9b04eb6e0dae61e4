//go:build faulttest

package faulttest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/pgtest"
)

// mailpitVersion is what the suite installs when no mailpit binary is found; the same
// as .ci/mailpit.sh.
const mailpitVersion = "v1.27.11"

// suite is what every scenario shares: the ates binary, the proxy server, where
// PostgreSQL and RabbitMQ are, and the results table.
type suite struct {
	bin         string
	rabbitmqctl string
	pgBase      *url.URL
	amqpBase    *url.URL
	proxies     *proxies
	table       *table
}

// TestFaults runs every scenario in turn (they share the machine's two cores, so never in
// parallel) and prints one table of what each lost, duplicated and dead-lettered.
func TestFaults(t *testing.T) {
	s := newSuite(t)
	start := time.Now()
	t.Cleanup(func() {
		fmt.Print(s.table.String())
		fmt.Printf("fault suite: %s\n", time.Since(start).Round(time.Second))
	})
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			row := &row{scenario: sc.name}
			s.table.add(row)
			sc.run(t, s, row)
		})
	}
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{proxies: newProxies(), table: &table{}}
	var err error
	if s.pgBase, err = url.Parse(pgtest.URL()); err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	if s.amqpBase, err = url.Parse(broker.TestURL()); err != nil {
		t.Fatalf("TEST_AMQP_URL: %v", err)
	}
	s.rabbitmqctl = findRabbitmqctl(t)
	ensureMailpit(t)
	s.bin = buildAtes(t)
	return s
}

// buildAtes builds the ates binary once into a temporary directory.
func buildAtes(t *testing.T) string {
	t.Helper()
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(mod)))
	bin := filepath.Join(t.TempDir(), "ates")
	cmd := exec.Command("go", "build", "-o", bin, "./services/cmd/ates")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./services/cmd/ates: %v\n%s", err, out)
	}
	return bin
}

// findRabbitmqctl finds rabbitmqctl, which creates each scenario's private vhost. There
// is no way around it: the services take one AMQP URL, and only a vhost keeps their
// fixed queue names apart from a developer's `make run` on the same broker.
func findRabbitmqctl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("rabbitmqctl")
	if err != nil {
		for _, p := range []string{"/usr/sbin/rabbitmqctl", "/usr/local/sbin/rabbitmqctl"} {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		t.Fatal("the fault suite needs rabbitmqctl (from the rabbitmq-server package, run as root or the rabbitmq user) " +
			"to create a private vhost per scenario; it is not on PATH nor in /usr/sbin or /usr/local/sbin")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, path, "-q", "list_vhosts").CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl list_vhosts failed (the fault suite creates a vhost per scenario; run it as root or "+
			"as a user who can read RabbitMQ's Erlang cookie): %v\n%s", err, out)
	}
	return path
}

// ensureMailpit installs Mailpit with go install when no binary is found where
// mailpittest.Start looks for it.
func ensureMailpit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("mailpit"); err == nil {
		return
	}
	gobin, _ := exec.Command("go", "env", "GOBIN").Output()
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	for _, dir := range []string{strings.TrimSpace(string(gobin)), filepath.Join(strings.TrimSpace(string(gopath)), "bin")} {
		if dir == "" || dir == "bin" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "mailpit")); err == nil {
			return
		}
	}
	t.Logf("mailpit not found: go install github.com/axllent/mailpit@%s", mailpitVersion)
	if out, err := exec.Command("go", "install", "github.com/axllent/mailpit@"+mailpitVersion).CombinedOutput(); err != nil {
		t.Fatalf("go install github.com/axllent/mailpit@%s: %v\n%s", mailpitVersion, err, out)
	}
}
