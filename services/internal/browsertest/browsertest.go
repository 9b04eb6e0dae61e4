// Package browsertest drives a headless Chromium for the end-to-end tests of the web
// pages: the system's own Debian chromium (never a downloaded browser), one browser per
// test with a fresh profile, actions that fail the test with what they waited for, and
// full-page screenshots of each step under .cache/screenshots/<TestName>/ at the
// repository's root. Import it from tests only.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Install is the command that installs the browser the tests use.
const Install = "apt-get install -y chromium chromium-driver"

// stepTimeout bounds one action: a selector that never shows fails the test then.
const stepTimeout = 15 * time.Second

// Browser is one headless Chromium with one tab, for one test.
type Browser struct {
	t     testing.TB
	ctx   context.Context
	shots *shots

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// ExecPath is the Chromium the tests run: $TEST_CHROMIUM, else chromium on PATH, else
// /usr/bin/chromium; "" if none is there.
func ExecPath() string {
	names := []string{"chromium", "/usr/bin/chromium"}
	if p := os.Getenv("TEST_CHROMIUM"); p != "" {
		names = []string{p}
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Require returns the Chromium the tests run. Without one it fails the test in CI (CI
// set) and skips it elsewhere, saying how to install one.
func Require(t testing.TB) string {
	t.Helper()
	path := ExecPath()
	if path == "" {
		const why = "no Chromium (TEST_CHROMIUM, chromium on PATH or /usr/bin/chromium); install it with: " + Install
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return path
}

// Start starts Chromium for t and closes it when t ends; see Require for a machine
// without one.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := Require(t)
	b := &Browser{t: t, shots: shotsOf(t)}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root in CI, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		b.record(chromedp.ConsoleMessage{Type: chromedp.ConsoleError, Text: "chromedp: " + fmt.Sprintf(format, args...)})
	}))
	b.ctx = ctx
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Run starts the browser; the console is read from its first page on.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.record(m)
		}
	}()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b.shot("failed")
		for _, m := range b.Console() {
			t.Logf("browser console: %s", m)
		}
	})
	return b
}

func (b *Browser) record(m chromedp.ConsoleMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.console = append(b.console, m)
}

// Console is what the pages wrote to the console so far: calls of the console API,
// uncaught exceptions and the browser's own log (failed loads, CSP violations).
func (b *Browser) Console() []chromedp.ConsoleMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), b.console...)
}

// NoScriptErrors fails the test for every uncaught exception, every Content Security
// Policy violation and every script or style sheet that failed to load that the pages
// reported so far: a page whose script broke or was blocked can still show its
// server-rendered text.
func (b *Browser) NoScriptErrors() {
	b.t.Helper()
	for _, m := range b.ScriptErrors() {
		b.t.Errorf("the page reported %s (%s:%d)", m, m.URL, m.Line)
	}
}

// ScriptErrors are the messages NoScriptErrors fails a test for.
func (b *Browser) ScriptErrors() []chromedp.ConsoleMessage {
	var out []chromedp.ConsoleMessage
	for _, m := range b.Console() {
		asset := strings.HasSuffix(m.URL, ".js") || strings.HasSuffix(m.URL, ".css")
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") ||
			(asset && strings.Contains(m.Text, "Failed to load resource")) {
			out = append(out, m)
		}
	}
	return out
}

// run runs steps with the step timeout, failing the test with what as the step's name.
func (b *Browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

func (b *Browser) fail(what string, err error) {
	b.t.Helper()
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("not done within %s", stepTimeout)
	}
	b.t.Fatalf("browser: %s at %s: %v", what, b.URL(), err)
}

// Go loads url and returns the HTTP status of the page it ends on (after redirects).
func (b *Browser) Go(url string) int {
	b.t.Helper()
	return b.load("go to "+url, chromedp.Navigate(url))
}

// Submit clicks sel, which must load a new page (a form's submit button, a link), waits
// for that page and returns its HTTP status (after redirects).
func (b *Browser) Submit(sel string) int {
	b.t.Helper()
	return b.load("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// PressEnter presses Enter in the input sel, which must submit its form and load a new
// page, as a keyboard user would; it returns that page's HTTP status (after redirects).
func (b *Browser) PressEnter(sel string) int {
	b.t.Helper()
	return b.load("press Enter in "+sel, chromedp.SendKeys(chromedp.CSS(sel), kb.Enter))
}

func (b *Browser) load(what string, step chromedp.Action[chromedp.Void]) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, step)
	if err != nil {
		b.fail(what, err)
	}
	if resp == nil {
		b.t.Fatalf("browser: %s: no page loaded", what)
	}
	return int(resp.Status)
}

// Click clicks sel and returns at once: for buttons that change the page in place
// (htmx); wait for what they show with Wait or WaitText.
func (b *Browser) Click(sel string) {
	b.t.Helper()
	b.run("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// Fill types value into the input sel, replacing what it held.
func (b *Browser) Fill(sel, value string) {
	b.t.Helper()
	b.run("fill "+sel, chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value))
}

// SetValue sets the value of the input sel without typing, for inputs whose typing
// depends on the browser's locale (type=date).
func (b *Browser) SetValue(sel, value string) {
	b.t.Helper()
	b.run("set "+sel, chromedp.SetValue(chromedp.CSS(sel), value))
}

// Wait waits until sel is visible.
func (b *Browser) Wait(sel string) {
	b.t.Helper()
	b.run("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// WaitGone waits until no element matches sel.
func (b *Browser) WaitGone(sel string) {
	b.t.Helper()
	b.run("wait for "+sel+" to go", chromedp.WaitNotPresent(chromedp.CSS(sel)))
}

// WaitText waits until the text of sel is want, and fails the test with the last text
// seen if it does not become that.
func (b *Browser) WaitText(sel, want string) {
	b.t.Helper()
	var got string
	deadline := time.Now().Add(stepTimeout)
	for {
		got = b.textNow(sel)
		if got == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != want {
		b.t.Fatalf("browser: the text of %s at %s is %q, want %q", sel, b.URL(), got, want)
	}
}

// textNow is sel's text, or "" while sel is not there.
func (b *Browser) textNow(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, _ := chromedp.Run(ctx, Eval[string](fmt.Sprintf(
		`(document.querySelector(%q) || {innerText: ""}).innerText.trim()`, sel)))
	return s
}

// Text waits for sel and returns its visible text, trimmed.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.fail("read "+sel, err)
	}
	return strings.TrimSpace(s)
}

// Count is the number of elements that match sel now.
func (b *Browser) Count(sel string) int {
	b.t.Helper()
	return Evaluate[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// Attr is the attribute name of the first element matching sel ("" if it has none).
func (b *Browser) Attr(sel, name string) string {
	b.t.Helper()
	return Evaluate[string](b, fmt.Sprintf(`(document.querySelector(%q).getAttribute(%q) || "")`, sel, name))
}

// Eval is an action that evaluates the JavaScript expression js, awaiting it if it is
// a promise, and decodes its value as a T.
func Eval[T any](js string) chromedp.Action[T] {
	return chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise)
}

// Evaluate runs the JavaScript expression js in b's page and decodes its value as a T.
func Evaluate[T any](b *Browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, Eval[T](js))
	if err != nil {
		b.fail("evaluate "+js, err)
	}
	return v
}

// URL is the address of the page the tab shows.
func (b *Browser) URL() string {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(unknown page: " + err.Error() + ")"
	}
	return u
}

// Cookie is the browser's cookie name for url ("" and false if it has none), HttpOnly
// ones included.
func (b *Browser) Cookie(url, name string) (*network.Cookie, bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		b.fail("read the cookies", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}

// SetCookie gives the browser a cookie for url, as a stolen or remembered one would be.
func (b *Browser) SetCookie(url string, c *network.Cookie) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
		Name: c.Name, Value: c.Value, URL: url, Path: c.Path, HTTPOnly: &c.HTTPOnly, SameSite: c.SameSite,
	})
	if err != nil {
		b.fail("set cookie "+c.Name, err)
	}
}
