package web

import (
	"bytes"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/bizday"
)

// session is the logged-in user of a request.
type session struct {
	token string
	user  *authv1.User
}

// view is what every page template gets.
type view struct {
	Title string
	// User is nil on the login page.
	User *authv1.User
	// Nav lists the pages the user's role may use.
	Nav []navLink
	// Error is the API's refusal, shown in #error.
	Error string
	// Fields are the fields the API named in a refusal.
	Fields []string
	// Page is the page's own data.
	Page any
}

type navLink struct {
	ID, Href, Label string
}

// navFor is the pages a role may use, by the access table (docs/product.md): hiding the
// others is a courtesy, the APIs decide.
func navFor(role authv1.Role) []navLink {
	admin := navLink{"nav-admin", "/admin", "Analytics"}
	accounting := navLink{"nav-accounting", "/accounting", "Accounting"}
	manager := navLink{"nav-manager", "/manager", "Tasks"}
	worker := navLink{"nav-worker", "/worker", "My balance"}
	switch role {
	case authv1.Role_ROLE_ADMIN:
		return []navLink{admin, accounting, manager}
	case authv1.Role_ROLE_ACCOUNTANT:
		return []navLink{accounting}
	case authv1.Role_ROLE_MANAGER:
		return []navLink{manager, accounting}
	case authv1.Role_ROLE_WORKER:
		return []navLink{worker}
	}
	return nil
}

// homeOf is where / sends a role.
func homeOf(role authv1.Role) string {
	switch role {
	case authv1.Role_ROLE_ADMIN:
		return "/admin"
	case authv1.Role_ROLE_ACCOUNTANT:
		return "/accounting"
	case authv1.Role_ROLE_MANAGER:
		return "/manager"
	default:
		return "/worker"
	}
}

var funcs = template.FuncMap{
	"role": authn.RoleName,
	"time": func(ts *timestamppb.Timestamp) string {
		if ts == nil {
			return ""
		}
		return ts.AsTime().UTC().Format("2006-01-02 15:04:05Z")
	},
	"lower": strings.ToLower,
	"trimPrefix": func(prefix, s string) string {
		return strings.TrimPrefix(s, prefix)
	},
	"assignee": assigneeName,
}

// assigneeName is who holds t as people know them: the name they registered, or the id
// when the API gave no name.
func assigneeName(t *tasksv1.Task) string {
	if n := t.GetAssigneeName(); n != "" {
		return n
	}
	return t.GetAssignedTo()
}

// parsePages builds one template per page: the layout and the page's file, which
// defines "content".
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page with status; the page is rendered into memory first, so a template
// failure is a clean 500.
func (h *handler) render(w http.ResponseWriter, status int, page string, v view) {
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, "layout.html", v); err != nil {
		h.log.Error("render page", "page", page, "err", err)
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// view is a page's view for s.
func (s *session) view(title string, page any) view {
	return view{Title: title, User: s.user, Nav: navFor(s.user.GetRole()), Page: page}
}

// fail shows an API's refusal with its status, or sends an unauthenticated user to the
// login page, forgetting their token.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, s *session, title string, err error) {
	if unauthenticated(err) {
		clearSession(w, r)
		toLogin(w, r)
		return
	}
	v := view{Title: title}
	if s != nil {
		v = s.view(title, nil)
	}
	status := http.StatusBadGateway
	var ae *apiError
	if errors.As(err, &ae) {
		status = ae.httpStatus
		v.Error = "The server refused: " + ae.message
		v.Fields = ae.fields
		if status >= 500 {
			h.log.Warn("the API failed", "path", r.URL.Path, "err", err)
		}
	} else {
		h.log.Error("call the API", "path", r.URL.Path, "err", err)
		v.Error = "The service did not answer; try again in a moment."
	}
	h.render(w, status, "error", v)
}

// withSession runs page for a request with a valid session; without one the browser
// goes to /login.
func (h *handler) withSession(page func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(SessionCookie)
		if err != nil || c.Value == "" {
			toLogin(w, r)
			return
		}
		var resp authv1.AuthenticateCallerResponse
		if err := h.api.call(r, c.Value, http.MethodGet, h.opts.AuthURL, "/v1/auth/authenticate", nil, nil, &resp); err != nil {
			h.fail(w, r, nil, "Error", err)
			return
		}
		page(w, r, &session{token: c.Value, user: resp.GetUser()})
	}
}

// toLogin sends the browser to the login page: htmx is told to load it as a whole page
// (a redirect would be followed inside its request and swapped into this page).
func toLogin(w http.ResponseWriter, r *http.Request) {
	if htmx(r) {
		w.Header().Set("HX-Redirect", "/login")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func setSession(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: HttpOnly and SameSite=Strict always; Secure whenever the request came over TLS, as a plain-HTTP development server could not use it otherwise
		Name: SessionCookie, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: HttpOnly and SameSite=Strict always; Secure whenever the request came over TLS, as a plain-HTTP development server could not use it otherwise
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// today is the current business date.
func (h *handler) today() time.Time {
	return bizday.Of(h.opts.Now(), h.opts.BusinessTZ)
}

// dateParam is the query parameter name when it is a date, else today; a malformed one
// is passed on for the API to refuse with its own words.
func (h *handler) dateParam(r *http.Request, name string) string {
	if v := strings.TrimSpace(r.URL.Query().Get(name)); v != "" {
		return v
	}
	return bizday.Format(h.today())
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusNotFound, "error", view{Title: "Not found", Error: "There is no page " + r.URL.Path + "."})
}

// ---- login, logout, home ----

type loginPage struct{}

func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "login", view{Title: "Log in", Page: loginPage{}})
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	var resp authv1.LoginResponse
	err := h.api.call(r, "", http.MethodPost, h.opts.AuthURL, "/v1/auth/login", nil,
		&authv1.LoginRequest{PhotoHash: r.PostFormValue("photo_hash")}, &resp)
	if err != nil {
		v := view{Title: "Log in", Page: loginPage{}}
		status := http.StatusBadGateway
		var ae *apiError
		if errors.As(err, &ae) {
			status, v.Error, v.Fields = ae.httpStatus, "The server refused: "+ae.message, ae.fields
		} else {
			h.log.Error("log in", "err", err)
			v.Error = "The login service did not answer; try again in a moment."
		}
		h.render(w, status, "login", v)
		return
	}
	setSession(w, r, resp.GetToken(), resp.GetExpiresAt().AsTime())
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout revokes the token at auth, then forgets it; a token auth no longer knows is
// as good as revoked.
func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		err := h.api.call(withoutCancel(r), c.Value, http.MethodPost, h.opts.AuthURL, "/v1/auth/logout", nil,
			&authv1.LogoutRequest{}, &authv1.LogoutResponse{})
		if err != nil && !unauthenticated(err) {
			h.fail(w, r, nil, "Log out", err)
			return
		}
	}
	clearSession(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (h *handler) home(w http.ResponseWriter, r *http.Request, s *session) {
	http.Redirect(w, r, homeOf(s.user.GetRole()), http.StatusSeeOther)
}

// pageURL is path with the query q.
func pageURL(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}
