package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/web"
	"github.com/ates/ates/services/web/webtest"
)

// browser is a cookie-keeping HTTP client that sends what a browser sends with a
// same-origin form post; it does not follow redirects, so tests see them.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, env *webtest.Env) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: env.URL, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is an answer, its body read.
type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, header http.Header) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.base+path, body)
	require.NoError(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range header {
		if v == nil {
			req.Header.Del(k)
			continue
		}
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (b *browser) get(path string) page { return b.do(http.MethodGet, path, nil, nil) }

func (b *browser) post(path string, form url.Values) page {
	return b.do(http.MethodPost, path, form, nil)
}

// login logs u in through the login form and checks it lands on its home.
func (b *browser) login(u authtest.User) {
	b.t.Helper()
	p := b.post("/login", url.Values{"photo_hash": {u.PhotoHash}})
	require.Equal(b.t, http.StatusSeeOther, p.status, p.body)
	require.Equal(b.t, "/", p.header.Get("Location"))
}

// token is the session cookie's value.
func (b *browser) token() string {
	u, err := url.Parse(b.base)
	require.NoError(b.t, err)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == web.SessionCookie {
			return c.Value
		}
	}
	return ""
}

// text is the text of the element with id, which must hold no markup.
func text(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(body)
	require.NotNil(t, m, "no element #%s in\n%s", id, body)
	return strings.TrimSpace(m[1])
}

// authenticate asks auth's REST API who token belongs to.
func authenticate(t *testing.T, env *webtest.Env, token string) int {
	t.Helper()
	status, _ := servertest.REST(t, env.HTTPAddr, http.MethodGet, "/v1/auth/authenticate", token, "")
	return status
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	env := webtest.Start(t)
	today := bizday.Of(time.Now(), time.UTC)
	day := func(offset int) string { return bizday.Format(today.AddDate(0, 0, offset)) }

	t.Run("login keeps the token in an HttpOnly SameSite=Strict cookie, never in the page or URL", func(t *testing.T) {
		t.Parallel()
		u := env.NewUser(t, authv1.Role_ROLE_WORKER)
		b := newBrowser(t, env)
		p := b.post("/login", url.Values{"photo_hash": {u.PhotoHash}})
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "/", p.header.Get("Location"))
		cookies := (&http.Response{Header: p.header}).Cookies()
		require.Len(t, cookies, 1)
		c := cookies[0]
		require.Equal(t, web.SessionCookie, c.Name)
		require.True(t, c.HttpOnly)
		require.Equal(t, http.SameSiteStrictMode, c.SameSite)
		require.Equal(t, "/", c.Path)
		require.NotEmpty(t, c.Value)
		require.NotContains(t, p.body, c.Value)
		require.NotContains(t, p.header.Get("Location"), c.Value)
		require.Equal(t, http.StatusOK, authenticate(t, env, c.Value), "the cookie holds a working API token")

		home := b.get("/")
		require.Equal(t, http.StatusSeeOther, home.status)
		require.Equal(t, "/worker", home.header.Get("Location"))
		w := b.get("/worker")
		require.Equal(t, http.StatusOK, w.status, w.body)
		require.NotContains(t, w.body, c.Value)
		require.Equal(t, u.Name+" (worker)", text(t, w.body, "whoami"))
	})

	t.Run("a wrong photo hash is refused with auth's status and message", func(t *testing.T) {
		t.Parallel()
		b := newBrowser(t, env)
		p := b.post("/login", url.Values{"photo_hash": {"not-anyones-photo-hash"}})
		require.Equal(t, http.StatusUnauthorized, p.status)
		require.Contains(t, p.body, `<div id="error" role="alert">The server refused: `)
		require.Contains(t, p.body, `<form id="login"`)
		require.Empty(t, b.token())
	})

	t.Run("each role lands on its home page", func(t *testing.T) {
		t.Parallel()
		for role, home := range map[authv1.Role]string{
			authv1.Role_ROLE_ADMIN: "/admin", authv1.Role_ROLE_ACCOUNTANT: "/accounting",
			authv1.Role_ROLE_MANAGER: "/manager", authv1.Role_ROLE_WORKER: "/worker",
		} {
			b := newBrowser(t, env)
			b.login(env.NewUser(t, role))
			p := b.get("/")
			require.Equal(t, http.StatusSeeOther, p.status, role)
			require.Equal(t, home, p.header.Get("Location"), role)
			require.Equal(t, http.StatusOK, b.get(home).status, role)
		}
	})

	t.Run("without a session every page sends the browser to /login", func(t *testing.T) {
		t.Parallel()
		b := newBrowser(t, env)
		for _, path := range []string{"/", "/admin", "/worker", "/manager", "/accounting", "/tasks/x"} {
			p := b.get(path)
			require.Equal(t, http.StatusSeeOther, p.status, path)
			require.Equal(t, "/login", p.header.Get("Location"), path)
		}
	})

	t.Run("logout revokes the token: the API refuses it afterwards", func(t *testing.T) {
		t.Parallel()
		b := newBrowser(t, env)
		b.login(env.NewUser(t, authv1.Role_ROLE_MANAGER))
		token := b.token()
		require.Equal(t, http.StatusOK, authenticate(t, env, token))
		p := b.post("/logout", url.Values{})
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "/login", p.header.Get("Location"))
		require.Empty(t, b.token(), "the cookie is cleared")
		require.Equal(t, http.StatusUnauthorized, authenticate(t, env, token))

		// The old cookie, replayed, is worth nothing and is cleared again.
		old := newBrowser(t, env)
		u, _ := url.Parse(env.URL)
		old.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: token, Path: "/"}})
		p = old.get("/manager")
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, "/login", p.header.Get("Location"))
		require.Empty(t, old.token())
		// htmx is told to load the login page, not to swap it into the page.
		old.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: token, Path: "/"}})
		p = old.do(http.MethodPost, "/tasks/x/complete", url.Values{}, http.Header{"Hx-Request": {"true"}})
		require.Equal(t, http.StatusNoContent, p.status)
		require.Equal(t, "/login", p.header.Get("HX-Redirect"))
	})

	t.Run("a cross-site POST is refused and changes nothing", func(t *testing.T) {
		t.Parallel()
		b := newBrowser(t, env)
		b.login(env.NewUser(t, authv1.Role_ROLE_WORKER))
		for _, h := range []http.Header{
			// A browser too old to send Sec-Fetch-Site: the Origin decides.
			{"Sec-Fetch-Site": nil, "Origin": {"http://evil.example"}},
			{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}},
			{"Sec-Fetch-Site": {"same-site"}},
		} {
			p := b.do(http.MethodPost, "/logout", url.Values{}, h)
			require.Equal(t, http.StatusForbidden, p.status, h)
			require.Equal(t, http.StatusOK, authenticate(t, env, b.token()), "the session survives %v", h)
		}
		p := b.do(http.MethodPost, "/login", url.Values{"photo_hash": {"whatever-it-is"}}, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}})
		require.Equal(t, http.StatusForbidden, p.status, "no login CSRF either")
	})

	t.Run("a worker on /admin gets the API's 403 in the error alert", func(t *testing.T) {
		t.Parallel()
		b := newBrowser(t, env)
		b.login(env.NewUser(t, authv1.Role_ROLE_WORKER))
		p := b.get("/admin")
		require.Equal(t, http.StatusForbidden, p.status)
		require.Regexp(t, `<div id="error" role="alert">The server refused: [^<]+</div>`, p.body)
		require.Contains(t, p.body, `id="whoami"`)
		require.NotContains(t, p.body, `id="nav-admin"`, "a worker is not offered the admin page")
		require.Contains(t, p.body, `id="nav-worker"`)
	})

	t.Run("the worker page shows the balance figures of the seeded ledger, paged", func(t *testing.T) {
		t.Parallel()
		u := env.NewUser(t, authv1.Role_ROLE_WORKER)
		env.Book.Fee(u.ID, day(-1), -20) // yesterday, still open: today's opening
		first := env.Book.Fee(u.ID, day(0), -1)
		for range 50 {
			env.Book.Fee(u.ID, day(0), -1)
		}
		env.Book.Reward(u.ID, first, day(0), 30)

		b := newBrowser(t, env)
		b.login(u)
		p := b.get("/worker")
		require.Equal(t, http.StatusOK, p.status, p.body)
		for id, want := range map[string]string{
			"balance-opening": "-20", "balance-rewards": "30", "balance-fees": "-51", "balance-closing": "-41",
			"balance-payout": "0", "balance-carry": "0", "balance-closed": "open",
		} {
			require.Equal(t, want, text(t, p.body, id), id)
		}
		require.Equal(t, 50, strings.Count(p.body, "data-entry-id="), "one page of the log")
		require.Equal(t, 52, strings.Count(p.body, `class="complete-task"`), "the open tasks")
		next := regexp.MustCompile(`id="audit-next" href="([^"]+)"`).FindStringSubmatch(p.body)
		require.NotNil(t, next)
		p = b.get(strings.ReplaceAll(next[1], "&amp;", "&"))
		require.Equal(t, http.StatusOK, p.status, p.body)
		require.Equal(t, 2, strings.Count(p.body, "data-entry-id="), "the rest of the log")
		require.NotContains(t, p.body, `id="audit-next"`)

		yesterday := b.get("/worker?date=" + day(-1))
		require.Equal(t, "-20", text(t, yesterday.body, "balance-fees"))
		require.Equal(t, "0", text(t, yesterday.body, "balance-opening"))
	})

	t.Run("an accountant reads the day's stats and a worker's balance", func(t *testing.T) {
		t.Parallel()
		w := env.NewUser(t, authv1.Role_ROLE_WORKER)
		d := day(-20) // a day no other subtest writes
		task := env.Book.Fee(w.ID, d, -14)
		env.Book.Reward(w.ID, task, d, 33)
		b := newBrowser(t, env)
		b.login(env.NewUser(t, authv1.Role_ROLE_ACCOUNTANT))
		p := b.get("/accounting?date=" + d + "&worker_id=" + w.ID.String())
		require.Equal(t, http.StatusOK, p.status, p.body)
		require.Equal(t, "-19", text(t, p.body, "stats-earnings"))
		require.Equal(t, "33", text(t, p.body, "stats-rewards"))
		require.Equal(t, "-14", text(t, p.body, "stats-fees"))
		require.Equal(t, "19", text(t, p.body, "balance-closing"))
		require.Equal(t, 2, strings.Count(p.body, "data-entry-id="))

		// A worker asking for someone else's balance gets accounting's refusal.
		wb := newBrowser(t, env)
		wb.login(env.NewUser(t, authv1.Role_ROLE_WORKER))
		p = wb.get("/accounting?date=" + d)
		require.Equal(t, http.StatusForbidden, p.status)
		require.Contains(t, p.body, `<div id="error" role="alert">The server refused: `)
	})

	t.Run("an admin sees who is below zero, the earnings of a range and its top task", func(t *testing.T) {
		t.Parallel()
		w := env.NewUser(t, authv1.Role_ROLE_WORKER)
		env.Book.Fee(w.ID, day(-12), -10)
		top := env.Book.Fee(w.ID, day(-11), -15)
		env.Book.Reward(w.ID, top, day(-11), 40)
		_, err := env.Pool.Exec(context.Background(),
			"UPDATE tasks SET status = 'complete', completed_at = $2, reward = 40 WHERE id = $1", top, today.AddDate(0, 0, -11).Add(time.Hour))
		require.NoError(t, err)
		env.Book.Fee(w.ID, day(0), -7) // -10 -15 +40 carries nothing; today ends at -7

		b := newBrowser(t, env)
		b.login(env.NewUser(t, authv1.Role_ROLE_ADMIN))
		p := b.get("/admin?from=" + day(-13) + "&to=" + day(-10))
		require.Equal(t, http.StatusOK, p.status, p.body)
		require.Equal(t, "-15", text(t, p.body, "earnings-total"), "fees 10 + 15, reward 40")
		require.Equal(t, 4, strings.Count(p.body, "<tr data-date="))
		require.Contains(t, p.body, `<script type="application/json" id="earnings-data">{"labels":["`+day(-13)+`",`)
		require.Contains(t, p.body, `"values":[0,10,-25,0]}`)
		require.Regexp(t, `<tr data-user-id="`+w.ID.String()+`"><td>`+regexp.QuoteMeta(w.Name)+`</td><td>`+regexp.QuoteMeta(w.Email)+`</td><td class="num">-7</td></tr>`, p.body)
		require.Contains(t, p.body, `<a id="top-task-link" href="/tasks/`+top.String()+`">`)

		tp := b.get("/tasks/" + top.String())
		require.Equal(t, http.StatusOK, tp.status, tp.body)
		require.Contains(t, tp.body, `<section id="task" data-task-id="`+top.String()+`"`)
		require.Equal(t, "complete", text(t, tp.body, "task-status"))
		require.Equal(t, "40", text(t, tp.body, "task-reward"))
	})
}

// TestManagerCreatesAndWorkerCompletes: a task a manager creates on the manager page goes
// to the only worker, who sees it among their open tasks, completes it (with htmx, and
// without), and sees the reward in their balance at once (wait=true).
func TestManagerCreatesAndWorkerCompletes(t *testing.T) {
	t.Parallel()
	env := webtest.Start(t)
	worker := env.NewUser(t, authv1.Role_ROLE_WORKER)
	mb := newBrowser(t, env)
	mb.login(env.NewUser(t, authv1.Role_ROLE_MANAGER))
	wb := newBrowser(t, env)
	wb.login(worker)

	create := func(description string) (id string, fee, reward int) {
		t.Helper()
		p := mb.post("/tasks", url.Values{"description": {description}})
		require.Equal(t, http.StatusOK, p.status, p.body)
		m := regexp.MustCompile(`<div id="created-task" data-task-id="([^"]+)"`).FindStringSubmatch(p.body)
		require.NotNil(t, m, p.body)
		require.Equal(t, worker.Name, text(t, p.body, "created-assignee"), "the assignee by name")
		require.Contains(t, p.body, `<span id="created-assignee" data-user-id="`+worker.ID.String()+`">`)
		fee, err := strconv.Atoi(text(t, p.body, "created-fee"))
		require.NoError(t, err)
		reward, err = strconv.Atoi(text(t, p.body, "created-reward"))
		require.NoError(t, err)
		return m[1], fee, reward
	}
	first, fee1, reward1 := create("Water the plants")
	second, fee2, reward2 := create("Feed the cat")

	// The task page names the assignee too.
	p := mb.get("/tasks/" + first)
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Equal(t, worker.Name, text(t, p.body, "task-assignee"))
	require.Equal(t, strconv.Itoa(fee1), text(t, p.body, "task-fee"))

	p = wb.get("/worker")

	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, `<tr data-task-id="`+first+`">`)
	require.Contains(t, p.body, `<tr data-task-id="`+second+`">`)
	require.Equal(t, strconv.Itoa(fee1+fee2), text(t, p.body, "balance-fees"))
	require.Equal(t, "0", text(t, p.body, "balance-rewards"))

	// htmx: the answer is the worker page as it now is.
	p = wb.do(http.MethodPost, "/tasks/"+first+"/complete", url.Values{}, http.Header{"Hx-Request": {"true"}})
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Equal(t, strconv.Itoa(reward1), text(t, p.body, "balance-rewards"))
	require.NotContains(t, p.body, `<tr data-task-id="`+first+`">`)
	require.Contains(t, p.body, `<tr data-task-id="`+second+`">`)

	// A plain form post: redirected to the page, which shows the result.
	p = wb.post("/tasks/"+second+"/complete", url.Values{})
	require.Equal(t, http.StatusSeeOther, p.status, p.body)
	require.Equal(t, "/worker", p.header.Get("Location"))
	p = wb.get("/worker")
	require.Equal(t, strconv.Itoa(reward1+reward2), text(t, p.body, "balance-rewards"))
	require.Equal(t, strconv.Itoa(fee1+fee2+reward1+reward2), text(t, p.body, "balance-closing"))
	require.NotContains(t, p.body, `<tr data-task-id="`+second+`">`)

	// Completing it again is the API's conflict, shown as such.
	p = wb.post("/tasks/"+second+"/complete", url.Values{})
	require.Equal(t, http.StatusConflict, p.status, p.body)
	require.Contains(t, p.body, `<div id="error" role="alert">The server refused: `)

	// Reassign-all, waited for: nothing is open.
	p = mb.post("/tasks/reassign", url.Values{})
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Equal(t, "0", text(t, p.body, "reassigned-count"))
	require.Contains(t, p.body, `<div id="reassign-result" role="status">`)

	// A worker may not reassign.
	p = wb.post("/tasks/reassign", url.Values{})
	require.Equal(t, http.StatusForbidden, p.status, p.body)
}

// TestFailedLoginsAreThrottledPerBrowser: the dashboard passes the browser's address on
// in X-Forwarded-For, so when it is one of auth's trusted proxies, failed logins are
// limited per browser, not for every web user at once; auth's 429 is shown as such.
func TestFailedLoginsAreThrottledPerBrowser(t *testing.T) {
	t.Parallel()
	env := webtest.StartWith(t, func(c *config.Config) {
		prefixes, err := netip.ParsePrefix("127.0.0.1/32")
		require.NoError(t, err)
		c.Limits.TrustedProxies = []netip.Prefix{prefixes}
	})
	b := newBrowser(t, env)
	loginFrom := func(addr string) page {
		return b.do(http.MethodPost, "/login", url.Values{"photo_hash": {"nobody-has-this-photo"}}, http.Header{"X-Forwarded-For": {addr}})
	}
	burst := env.Config.Limits.FailedLoginsPerAddr.Burst
	require.Positive(t, burst)
	for i := range burst {
		require.Equal(t, http.StatusUnauthorized, loginFrom("203.0.113.7").status, "failure %d", i+1)
	}
	p := loginFrom("203.0.113.7")
	require.Equal(t, http.StatusTooManyRequests, p.status)
	require.Contains(t, p.body, `<div id="error" role="alert">The server refused: `)
	require.Equal(t, http.StatusUnauthorized, loginFrom("203.0.113.8").status, "another browser is not held back")

	u := env.NewUser(t, authv1.Role_ROLE_WORKER)
	p = b.do(http.MethodPost, "/login", url.Values{"photo_hash": {u.PhotoHash}}, http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	require.Equal(t, http.StatusSeeOther, p.status)
}

func TestStaticAssetsAndHeaders(t *testing.T) {
	t.Parallel()
	env := webtest.Start(t)
	b := newBrowser(t, env)

	login := b.get("/login")
	require.Equal(t, http.StatusOK, login.status)
	require.Equal(t, "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'", login.header.Get("Content-Security-Policy"))
	require.Equal(t, "nosniff", login.header.Get("X-Content-Type-Options"))
	require.Equal(t, "text/html; charset=utf-8", login.header.Get("Content-Type"))
	require.Contains(t, login.body, `<html lang="en">`)
	require.Contains(t, login.body, `<label for="photo-hash">Photo hash</label>`)
	require.NotRegexp(t, `<script(?: [^>]*)?>[^<]`, login.body, "no inline script")

	for path, ctype := range map[string]string{
		"/static/vendor/htmx.min.js":      "text/javascript; charset=utf-8",
		"/static/vendor/chart.umd.min.js": "text/javascript; charset=utf-8",
		"/static/app.js":                  "text/javascript; charset=utf-8",
		"/static/app.css":                 "text/css; charset=utf-8",
	} {
		p := b.get(path)
		require.Equal(t, http.StatusOK, p.status, path)
		require.Equal(t, ctype, p.header.Get("Content-Type"), path)
		require.NotEmpty(t, p.body, path)
		require.NotEmpty(t, p.header.Get("Content-Security-Policy"), path)
		etag := p.header.Get("ETag")
		require.NotEmpty(t, etag, path)
		require.NotEmpty(t, p.header.Get("Cache-Control"), path)
		again := b.do(http.MethodGet, path, nil, http.Header{"If-None-Match": {etag}})
		require.Equal(t, http.StatusNotModified, again.status, path)
	}
	require.Equal(t, http.StatusNotFound, b.get("/static/nope.js").status)

	// The REST API and the service endpoints are still there beside the pages.
	require.Equal(t, http.StatusOK, b.get("/healthz").status)
	require.Equal(t, http.StatusUnauthorized, b.get("/v1/analytics/workers").status)
	require.Equal(t, http.StatusOK, b.get("/openapi.json").status)
}
