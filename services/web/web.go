// Package web is the aTES web dashboard: server-rendered pages (html/template, with htmx
// and Chart.js vendored and embedded) for logging in, a worker's balance and open tasks,
// a manager's task creation and reassign-all, the company's stats and any worker's
// balance for accountants and managers, and the analytics for admins.
//
// It has no privileged path: every page calls the public REST APIs of auth, tasks,
// accounting and analytics over HTTP with the user's own token, so each API's access
// rules hold here too; a refusal is shown with the API's status and message. The token
// lives only in the HttpOnly, SameSite=Strict cookie ates_session.
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SessionCookie holds the user's API token.
const SessionCookie = "ates_session"

// contentSecurityPolicy allows only this server's own scripts, styles and images: no
// inline script or style, no framing, forms posting only here.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options says where the APIs are.
type Options struct {
	// AuthURL, TasksURL, AccountingURL and AnalyticsURL are the base URLs of each
	// service's REST API ("http://127.0.0.1:8081").
	AuthURL, TasksURL, AccountingURL, AnalyticsURL string
	// Client makes the API calls; nil is a client with a 60s timeout.
	Client *http.Client
	// Logger receives what the user is not shown (unreachable APIs, bad answers).
	Logger *slog.Logger
	// BusinessTZ is the time zone whose calendar dates are business days: the pages'
	// default dates are today there. Nil is UTC.
	BusinessTZ *time.Location
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// handler serves the dashboard.
type handler struct {
	opts   Options
	api    *apiClient
	log    *slog.Logger
	pages  map[string]*template.Template
	static map[string]asset
}

// New builds the dashboard's handler: mount it at "/" of an HTTP server.
func New(opts Options) (http.Handler, error) {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 60 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BusinessTZ == nil {
		opts.BusinessTZ = time.UTC
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	for name, u := range map[string]string{"auth": opts.AuthURL, "tasks": opts.TasksURL,
		"accounting": opts.AccountingURL, "analytics": opts.AnalyticsURL} {
		if p, err := url.Parse(u); err != nil || p.Host == "" {
			return nil, fmt.Errorf("web: the %s API's URL %q is not an absolute URL", name, u)
		}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	static, err := loadAssets(sub)
	if err != nil {
		return nil, err
	}
	h := &handler{opts: opts, api: &apiClient{http: opts.Client}, log: opts.Logger, pages: pages, static: static}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /static/", h.serveStatic)
	mux.HandleFunc("GET /login", h.loginPage)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("POST /logout", h.logout)
	mux.HandleFunc("GET /{$}", h.withSession(h.home))
	mux.HandleFunc("GET /admin", h.withSession(h.adminPage))
	mux.HandleFunc("GET /accounting", h.withSession(h.accountingPage))
	mux.HandleFunc("GET /worker", h.withSession(h.workerPage))
	mux.HandleFunc("GET /manager", h.withSession(h.managerPage))
	mux.HandleFunc("GET /tasks/{id}", h.withSession(h.taskPage))
	mux.HandleFunc("POST /tasks", h.withSession(h.createTask))
	mux.HandleFunc("POST /tasks/reassign", h.withSession(h.reassignAll))
	mux.HandleFunc("POST /tasks/{id}/complete", h.withSession(h.completeTask))
	mux.HandleFunc("/", h.notFound)
	return securityHeaders(sameOriginPosts(mux)), nil
}

// securityHeaders sets the CSP and the other headers every answer carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// sameOriginPosts refuses, with 403, a POST another site's page made the browser send
// (CSRF): the session cookie is SameSite=Strict already, and this is the second line.
// Browsers send Sec-Fetch-Site, or at least Origin, on every POST, and either naming
// another site is refused; a request with neither comes from a client that is not a
// browser, which no other site can drive.
func sameOriginPosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !sameOrigin(r) {
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin is false when either header says the request came from another site.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	// The host only: behind a proxy that ends TLS the scheme seen here is not the
	// browser's.
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
