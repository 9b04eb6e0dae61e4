package systemtest_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/systemtest"
	"github.com/ates/ates/services/mailsender/mailpittest"
)

// The README's walkthrough is run, not just read: a ```sh block preceded by
// readmeRun is run, in README order, in one bash session against a system this test starts;
// one preceded by readmeSkip (with a reason) is not. Any other shell block that talks to a
// running system is an error, so a new example cannot escape the test by omission.
const (
	readmeRun  = "<!-- readme-test -->"
	readmeSkip = "<!-- readme-test: skip"
)

// readmeBlock is one ```sh block of README.md.
type readmeBlock struct {
	line int // of the opening fence
	body string
}

// talksToSystem tells a block that needs a running aTES (or its database) to be marked.
var talksToSystem = regexp.MustCompile(`localhost:|\./services/cmd/ates|grpcurl`)

// readmeBlocks returns the blocks to run, and fails the test for a block that should be
// marked and is not.
func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		run     []readmeBlock
		prev    string       // the last non-blank line outside a block: a marker, or not
		sh      *readmeBlock // the ```sh block being read
		shMark  string       // and the line before it
		inOther bool         // in a block of another language
		n       int
	)
	for sc := bufio.NewScanner(f); sc.Scan(); {
		n++
		line := sc.Text()
		switch {
		case sh != nil && line == "```":
			switch {
			case shMark == readmeRun:
				run = append(run, *sh)
			case strings.HasPrefix(shMark, readmeSkip):
			case talksToSystem.MatchString(sh.body):
				t.Errorf("README.md:%d: a shell block that talks to a running aTES needs %q before it "+
					"(the walkthrough test runs it) or %q (and why not)", sh.line, readmeRun, readmeSkip+" REASON -->")
			}
			sh, prev = nil, ""
		case sh != nil:
			sh.body += line + "\n"
		case inOther:
			inOther = line != "```"
		case line == "```sh":
			sh, shMark = &readmeBlock{line: n}, prev
		case strings.HasPrefix(line, "```"):
			inOther = true
		case strings.TrimSpace(line) != "":
			prev = strings.TrimSpace(line)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if len(run) == 0 {
		t.Fatalf("README.md has no block marked %q", readmeRun)
	}
	return run
}

// readmeMailpitPort is where the README finds Mailpit's web UI and API.
const readmeMailpitPort = 8025

// TestREADMEWalkthrough runs the README's examples top to bottom against a fresh system:
// `ates all` on a private database, vhost and Mailpit, on free ports that replace the
// README's localhost ports, so it runs next to a developer's `make run`. Every command
// must succeed, every HTTP answer be 2xx (but the one 409 the README warns about), the
// closed day must show, and Walt's summary mail must arrive.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	blocks := readmeBlocks(t, filepath.Join(systemtest.RepoRoot(t), "README.md"))
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	mail := mailpittest.Start(t)

	// The tools the README uses: ates for `go run ./services/cmd/ates` (built once, not
	// per command), and grpcurl as pinned in tools/go.mod.
	binDir := t.TempDir()
	if err := os.Rename(systemtest.BuildAtes(t), filepath.Join(binDir, "ates")); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, "grpcurl"), "github.com/fullstorydev/grpcurl/cmd/grpcurl")
	build.Dir = filepath.Join(systemtest.RepoRoot(t), "tools")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build grpcurl from tools/go.mod: %v\n%s", err, out)
	}

	_, dbURL := pgtest.NewDB(t)
	amqpURL := systemtest.PrivateVhost(t, broker.TestURL(), "ates-readme-"+systemtest.RandomSuffix())

	// Free ports for the README's ones.
	ports := map[int]string{readmeMailpitPort: strings.TrimPrefix(mail.API, "http://")}
	env := append(systemtest.BaseEnv(),
		"ATES_DATABASE_URL="+dbURL,
		"ATES_AMQP_URL="+amqpURL,
		"ATES_SMTP_ADDR="+mail.SMTP,
		// The README closes days by hand; no scheduled close interferes.
		"ATES_CLOSE_DAY_SCHEDULE=@every 24h",
		"ATES_SHUTDOWN_TIMEOUT=5s",
	)
	httpAddrs := map[string]string{}
	for _, s := range systemtest.Services {
		up := strings.ToUpper(s.Name)
		ports[s.HTTPPort] = systemtest.FreeAddr(t)
		httpAddrs[s.Name] = ports[s.HTTPPort]
		env = append(env, "ATES_"+up+"_HTTP_ADDR="+ports[s.HTTPPort])
		if s.GRPCPort != 0 {
			ports[s.GRPCPort] = systemtest.FreeAddr(t)
			env = append(env, "ATES_"+up+"_GRPC_ADDR="+ports[s.GRPCPort])
		}
	}
	env = append(env, "ATES_AUTH_ADDR="+ports[50051])
	systemtest.StartAll(t, filepath.Join(binDir, "ates"), env, httpAddrs)

	// The script: the marked blocks with the README's ports replaced, `go run` replaced by
	// the built binary, and curl wrapped to record every answer's status.
	statusLog := filepath.Join(t.TempDir(), "status")
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	script.WriteString(`curl() { command curl -w '%{stderr}readme-test-status %{http_code} %{method} %{url_effective}\n' "$@" 2>>"$READMETEST_STATUS"; }` + "\n")
	localhost := regexp.MustCompile(`localhost:(\d+)`)
	for _, b := range blocks {
		body := strings.ReplaceAll(b.body, "go run ./services/cmd/ates", "ates")
		body = localhost.ReplaceAllStringFunc(body, func(m string) string {
			port, _ := strconv.Atoi(strings.TrimPrefix(m, "localhost:"))
			addr, ok := ports[port]
			if !ok {
				t.Fatalf("README.md:%d: %s is none of the ports in the README's table", b.line, m)
			}
			return addr
		})
		fmt.Fprintf(&script, "echo '### README.md:%d' >&2\nset -x\n%sset +x\n", b.line, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", script.String())
	cmd.Dir = systemtest.RepoRoot(t)
	cmd.Env = append(append([]string{}, env...),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"READMETEST_STATUS="+statusLog)
	// What the examples' `date -u +%F` says (a run across midnight UTC may fail: the
	// examples themselves would then mix two days).
	today := time.Now().UTC().Format(time.DateOnly)
	out, err := cmd.CombinedOutput()
	if err != nil {
		curlLog, _ := os.ReadFile(statusLog) // curl's own errors land there too
		t.Fatalf("the README's examples failed: %v\n%s\ncurl's answers and errors:\n%s", err, out, curlLog)
	}
	t.Logf("the README's examples:\n%s", out)

	checkStatuses(t, statusLog)
	if !strings.Contains(string(out), `"closed":true`) {
		t.Errorf(`no balance answered "closed":true after the README closed today`)
	}
	// Walt's summaries of the two days the README closed: yesterday's, then today's.
	subjects := []string{}
	for _, m := range mail.Wait(t, "walt@example.com", 2) {
		subjects = append(subjects, m.Subject)
	}
	if want := "Your aTES summary for " + today; !slices.Contains(subjects, want) {
		t.Errorf("Walt's mails are %q, none is %q", subjects, want)
	}
}

// readmeAllowed are the non-2xx answers the README tells the reader to expect.
var readmeAllowed = []struct {
	method string
	path   *regexp.Regexp
	code   int
	why    string
}{
	{"PUT", regexp.MustCompile(`^/v1/task/[^/]+/assign$`), http.StatusConflict,
		"the task may have landed on Walt already: FailedPrecondition, nothing changes"},
}

// checkStatuses fails the test for every HTTP answer curl recorded that the README does
// not promise.
func checkStatuses(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("curl recorded no status: %v", err)
	}
	seen := 0
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "readme-test-status" {
			continue
		}
		seen++
		code, _ := strconv.Atoi(f[1])
		if code >= 200 && code < 300 {
			continue
		}
		u, err := url.Parse(f[3])
		if err != nil {
			t.Errorf("curl recorded %q: %v", line, err)
			continue
		}
		ok := false
		for _, a := range readmeAllowed {
			ok = ok || (a.method == f[2] && a.path.MatchString(u.Path) && a.code == code)
		}
		if !ok {
			t.Errorf("README example %s %s answered %d", f[2], u.Path, code)
		}
	}
	if seen < 10 {
		t.Errorf("curl recorded %d answers; the walkthrough makes many more", seen)
	}
}
