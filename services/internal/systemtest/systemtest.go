// Package systemtest holds what the suites that run the real ates binary as
// subprocesses share (the fault suite, the load test, private Mailpit servers): building
// the binary, free loopback ports, an environment clean of the developer's ATES_*
// settings, and rabbitmqctl for a private vhost. Import it from tests only.
package systemtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FreeAddr returns a loopback address whose port was free a moment ago. Another program
// can take it before the caller binds it; callers that start a process on it should
// start again on another port when that happens.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// RepoRoot is the directory of the module's go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(mod)))
}

// BuildAtes builds the ates binary into a temporary directory and returns its path.
func BuildAtes(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ates")
	cmd := exec.Command("go", "build", "-o", bin, "./services/cmd/ates")
	cmd.Dir = RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./services/cmd/ates: %v\n%s", err, out)
	}
	return bin
}

// BaseEnv is the process environment without any ATES_ setting of the developer's shell,
// to which a suite adds the settings of each process it starts. It lets auth (and `ates
// admin create`) and the event producers and consumers use the public development keys, as
// `make run` does.
func BaseEnv() []string {
	env := []string{"ATES_ALLOW_DEV_KEYS=true"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ATES_") {
			env = append(env, kv)
		}
	}
	return env
}

// Rabbitmqctl finds rabbitmqctl and checks that it can talk to the local node. Suites
// need it to create a private vhost: the services take one AMQP URL, and only a vhost
// keeps their fixed queue names apart from a developer's `make run` on the same broker.
// It ends the test, saying what is missing, when it cannot.
func Rabbitmqctl(t testing.TB) string {
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
		t.Fatal("rabbitmqctl (from the rabbitmq-server package, run as root or the rabbitmq user) is needed " +
			"to create a private vhost; it is not on PATH nor in /usr/sbin or /usr/local/sbin")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, path, "-q", "list_vhosts").CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl list_vhosts failed (run as root or as a user who can read RabbitMQ's Erlang cookie): %v\n%s", err, out)
	}
	return path
}

// PrivateVhost creates the vhost name on the broker of baseURL (an AMQP URL), lets
// baseURL's user use it, deletes it when the test ends (after the cleanups registered
// later, so after the processes using it are gone), and returns baseURL pointing at it.
func PrivateVhost(t testing.TB, baseURL, name string) string {
	t.Helper()
	base, err := url.Parse(baseURL)
	if err != nil {
		t.Fatalf("AMQP URL %q: %v", baseURL, err)
	}
	ctl := Rabbitmqctl(t)
	run := func(args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, ctl, append([]string{"-q"}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("add_vhost", name)
	t.Cleanup(func() { run("delete_vhost", name) })
	run("set_permissions", "-p", name, base.User.Username(), ".*", ".*", ".*")
	base.Path, base.RawPath = "/"+name, "/"+url.PathEscape(name)
	return base.String()
}

// RandomSuffix is 8 random hex digits, to name a test's private database or vhost.
func RandomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
