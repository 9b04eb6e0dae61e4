package browsertest_test

import (
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/browsertest"
)

// page is a small site: a form whose POST sets an HttpOnly cookie and redirects, a
// page that answers 403, and a page whose inline script its CSP blocks.
func page(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>form</title>
<form method="post" action="/in"><label for="name">Name</label><input id="name" name="name">
<input id="day" name="day" type="date"><button id="go">Go</button></form>`)
	})
	mux.HandleFunc("POST /in", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "s", Value: r.FormValue("name"), Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/hello?day="+r.FormValue("day"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie("s")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>hello</title><p id="hi">  Hello %s on %s </p>`,
			c.Value, r.FormValue("day"))
	})
	mux.HandleFunc("GET /refused", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>no</title><div id="error" role="alert">no</div>`)
	})
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>broken</title><script src="/missing.js"></script>
<script src="/throws.js"></script>`)
	})
	mux.HandleFunc("GET /throws.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `throw new Error("broken on purpose")`)
	})
	mux.HandleFunc("GET /csp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'")
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>csp</title><p id="p">p</p><script>document.title = "ran"</script>`)
	})
	mux.HandleFunc("GET /inaccessible", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html><title>bad</title><main><input id="x">
<p style="color:#bbb;background:#fff">faint</p><button></button></main>`)
	})
	mux.HandleFunc("GET /accessible", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>good</title><main><h1>Good</h1>
<label for="x">Name</label><input id="x"><p>plain</p><button>Go</button></main>`)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// TestAccessibility: the axe-core audit finds an input without a label, faint text, a
// button without a name and a page without a language, and nothing on a page that has
// none of those.
func TestAccessibility(t *testing.T) {
	t.Parallel()
	s := page(t)
	b := browsertest.Start(t)

	require.Equal(t, http.StatusOK, b.Go(s.URL+"/inaccessible"))
	rules := map[string]bool{}
	for _, v := range b.Violations() {
		rules[v.ID] = true
		require.NotEmpty(t, v.Targets, v.ID)
	}
	for _, want := range []string{"label", "color-contrast", "button-name", "html-has-lang"} {
		require.True(t, rules[want], "axe reports %s; it reported %v", want, rules)
	}

	require.Equal(t, http.StatusOK, b.Go(s.URL+"/accessible"))
	b.Accessible("the accessible page")
}

// TestHelpers drives the helpers against a page of its own: typing, a form post that
// redirects (its status), an HttpOnly cookie, a refusal's status, full-page PNGs in
// the test's folder numbered across its browsers, and a blocked inline script reported.
func TestHelpers(t *testing.T) {
	t.Parallel()
	s := page(t)
	b := browsertest.Start(t)

	require.Equal(t, http.StatusOK, b.Go(s.URL))
	b.Fill("#name", "Ann")
	b.SetValue("#day", "2026-03-02")
	first := b.Shot("form filled")
	require.Equal(t, http.StatusOK, b.Submit("#go"), "the status of the page the redirect ends on")
	require.Equal(t, "Hello Ann on 2026-03-02", b.Text("#hi"))
	b.WaitText("#hi", "Hello Ann on 2026-03-02")
	require.Equal(t, 1, b.Count("p#hi"))
	c, ok := b.Cookie(s.URL, "s")
	require.True(t, ok, "the HttpOnly cookie is there")
	require.Equal(t, "Ann", c.Value)
	require.True(t, c.HTTPOnly)
	b.NoScriptErrors()

	require.Equal(t, http.StatusOK, b.Go(s.URL))
	b.Fill("#name", "Bea")
	require.Equal(t, http.StatusOK, b.PressEnter("#name"), "Enter submits the form")
	require.Equal(t, "Hello Bea on", b.Text("#hi"))

	require.Equal(t, http.StatusForbidden, b.Go(s.URL+"/refused"))
	require.Equal(t, "alert", b.Attr("#error", "role"))

	require.Equal(t, filepath.Join(browsertest.ShotDir(t), "01-form-filled.png"), first)
	f, err := os.Open(first)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, "a PNG")
	require.Equal(t, 1280, img.Bounds().Dx())

	// A second user's browser in the same test goes on numbering, and keeps the first's.
	other := browsertest.Start(t)
	require.Equal(t, http.StatusOK, other.Go(s.URL))
	require.Equal(t, filepath.Join(browsertest.ShotDir(t), "02-second-browser.png"), other.Shot("second browser"))
	require.FileExists(t, first)
	_, ok = other.Cookie(s.URL, "s")
	require.False(t, ok, "browsers share no cookies")

	// What NoScriptErrors fails a test for: a missing script, an exception, a script
	// the CSP blocked, each seen in a browser of its own.
	for _, c := range []struct{ path, want string }{
		{"/broken", "Failed to load resource"},
		{"/broken", "broken on purpose"},
		{"/csp", "Content Security Policy"},
	} {
		other := browsertest.Start(t)
		require.Equal(t, http.StatusOK, other.Go(s.URL+c.path))
		require.Eventually(t, func() bool {
			for _, m := range other.ScriptErrors() {
				if strings.Contains(m.Text, c.want) {
					return true
				}
			}
			return false
		}, stepTimeoutForTest, pollForTest, "%s: %q is reported: %v", c.path, c.want, other.Console())
		if c.path == "/csp" {
			require.Equal(t, "csp", browsertest.Evaluate[string](other, "document.title"), "the inline script did not run")
		}
	}
	require.Empty(t, b.ScriptErrors(), "the first pages had none")
}

const (
	stepTimeoutForTest = 5 * time.Second
	pollForTest        = 50 * time.Millisecond
)

// TestRequire runs itself without a Chromium (TEST_CHROMIUM naming none): in CI the test
// fails and names the apt-get command; elsewhere it is skipped.
func TestRequire(t *testing.T) {
	if os.Getenv("BROWSERTEST_REQUIRE_CHILD") != "" {
		browsertest.Require(t)
		t.Log("Chromium found")
		return
	}
	t.Parallel()
	run := func(ci string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequire$", "-test.v")
		cmd.Env = []string{"BROWSERTEST_REQUIRE_CHILD=1", "TEST_CHROMIUM=" + filepath.Join(t.TempDir(), "no-chromium"),
			"CI=" + ci, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("true")
	require.Error(t, err, "in CI a missing Chromium fails the test:\n%s", out)
	require.Contains(t, out, "--- FAIL: TestRequire")
	require.Contains(t, out, browsertest.Install)
	out, err = run("")
	require.NoError(t, err, out)
	require.Contains(t, out, "--- SKIP: TestRequire")
	require.Contains(t, out, browsertest.Install)
}
