// Package mailpittest reads what a real SMTP server, Mailpit, received, through its HTTP
// API, and starts private Mailpit instances for tests that need the server to fail.
//
// The shared instance (bash .ci/mailpit.sh starts it) is found through TEST_SMTP_ADDR
// and TEST_MAILPIT_URL, by default 127.0.0.1:1025 and http://127.0.0.1:8025. Its mailbox
// is shared by every test: tests mail unique addresses and never delete messages.
package mailpittest

import (
	"encoding/json"
	"fmt"
	"go/build"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ates/ates/services/internal/systemtest"
)

// Server is a running Mailpit.
type Server struct {
	// SMTP is the host:port of its SMTP side.
	SMTP string
	// API is the base URL of its HTTP API.
	API string
}

// Shared returns the Mailpit every test may use.
func Shared() Server {
	s := Server{SMTP: "127.0.0.1:1025", API: "http://127.0.0.1:8025"}
	if v := os.Getenv("TEST_SMTP_ADDR"); v != "" {
		s.SMTP = v
	}
	if v := os.Getenv("TEST_MAILPIT_URL"); v != "" {
		s.API = v
	}
	return s
}

// Address is a mail address as Mailpit reports it.
type Address struct {
	Name    string
	Address string
}

// Message is one received mail.
type Message struct {
	ID        string
	MessageID string
	From      Address
	To        []Address
	Subject   string
	Text      string
	HTML      string
}

// Search returns the messages sent to addr, newest first, with their bodies.
func (s Server) Search(t testing.TB, addr string) []Message {
	t.Helper()
	var found struct{ Messages []struct{ ID string } }
	s.get(t, "/api/v1/search?query="+url.QueryEscape(fmt.Sprintf("to:%q", addr)), &found)
	out := make([]Message, 0, len(found.Messages))
	for _, m := range found.Messages {
		var msg Message
		s.get(t, "/api/v1/message/"+url.PathEscape(m.ID), &msg)
		out = append(out, msg)
	}
	return out
}

// Wait waits until at least n messages to addr arrived and returns them.
func (s Server) Wait(t testing.TB, addr string, n int) []Message {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		msgs := s.Search(t, addr)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages to %s arrived in Mailpit", len(msgs), n, addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s Server) get(t testing.TB, path string, into any) {
	t.Helper()
	resp, err := http.Get(s.API + path)
	if err != nil {
		t.Fatalf("Mailpit API %s: %v (is Mailpit running? bash .ci/mailpit.sh starts it)", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Mailpit API %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("Mailpit API %s: decode: %v", path, err)
	}
}

// StopChaos turns off the failures a private Mailpit started with --enable-chaos injects.
func (s Server) StopChaos(t testing.TB) {
	t.Helper()
	off := `{"Sender":{"ErrorCode":451,"Probability":0},"Recipient":{"ErrorCode":451,"Probability":0},"Authentication":{"ErrorCode":535,"Probability":0}}`
	req, err := http.NewRequest(http.MethodPut, s.API+"/api/v1/chaos", strings.NewReader(off))
	if err != nil {
		t.Fatalf("Mailpit chaos: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("Mailpit chaos: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Mailpit chaos: %s", resp.Status)
	}
}

// FigureLine matches the line of a summary mail's text body that shows label's amount n,
// whatever the padding.
func FigureLine(label string, n int64) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(label) + `\s+` + strconv.FormatInt(n, 10) + `\r?$`)
}

// Start runs a private Mailpit with extra flags (such as --chaos-triggers) until the test
// ends. Without a mailpit binary it skips the test, and fails it in CI (CI set), where
// .ci/mailpit.sh has installed one.
func Start(t testing.TB, flags ...string) Server {
	t.Helper()
	bin := binary()
	if bin == "" {
		const why = "no mailpit binary on PATH, in GOBIN or in GOPATH/bin; bash .ci/mailpit.sh installs it"
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	s := Server{SMTP: systemtest.FreeAddr(t)}
	httpAddr := systemtest.FreeAddr(t)
	s.API = "http://" + httpAddr
	args := append([]string{
		"--smtp", s.SMTP, "--listen", httpAddr,
		"--database", filepath.Join(t.TempDir(), "mailpit.db"),
		"--disable-version-check", "--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
	}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mailpit: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.API + "/api/v1/info")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("private mailpit did not answer on %s: %v", s.API, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// binary finds the mailpit executable.
func binary() string {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	for _, dir := range []string{os.Getenv("GOBIN"), filepath.Join(build.Default.GOPATH, "bin")} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "mailpit")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}
