//go:build faulttest

package faulttest

import (
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
	"github.com/ates/ates/services/internal/systemtest"
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
	s.rabbitmqctl = systemtest.Rabbitmqctl(t)
	ensureMailpit(t)
	s.bin = systemtest.BuildAtes(t)
	return s
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
