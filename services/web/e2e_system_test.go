package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ates/ates/services/internal/broker"
	"github.com/ates/ates/services/internal/browsertest"
	"github.com/ates/ates/services/internal/ledgertest"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/systemtest"
	"github.com/ates/ates/services/mailsender/mailpittest"
)

// user is a user the harness registered, who can log in.
type user struct {
	ID, Name, Email, PhotoHash string
}

// system is `ates all` on a private database, vhost and Mailpit, on free ports, with
// users registered through the APIs and three past days of money written into its
// database (ledgertest's ThreeDays scenario, every figure computed by hand), closed.
type system struct {
	// web is the base URL of the pages (analytics' HTTP server); auth, tasks and
	// accounting those of the REST APIs the tests check the pages against.
	web, auth, tasks, accounting, analytics string

	admin, manager, accountant user
	// ann, bob and cid are the scenario's workers.
	ann, bob, cid user

	// days are the four days before today, oldest first: days[0] has no activity,
	// days[1:] are the scenario's days (closed).
	days  [4]string
	money ledgertest.Scenario
	book  *ledgertest.Book
}

// worker is the registered worker whose id is id.
func (s *system) worker(t *testing.T, id string) user {
	t.Helper()
	for _, w := range []user{s.ann, s.bob, s.cid} {
		if w.ID == id {
			return w
		}
	}
	t.Fatalf("no seeded worker has id %s", id)
	return user{}
}

// startSystem builds ates, runs `ates all` and seeds it. Today's business day is the UTC
// date (a run across midnight UTC may fail, as the seeded days would move).
func startSystem(t *testing.T) *system {
	t.Helper()
	browsertest.Require(t) // before the slow part
	mail := mailpittest.Start(t)
	bin := systemtest.BuildAtes(t)
	pool, dbURL := pgtest.NewDB(t)
	amqpURL := systemtest.PrivateVhost(t, broker.TestURL(), "ates-web-"+systemtest.RandomSuffix())

	env := append(systemtest.BaseEnv(),
		"ATES_DATABASE_URL="+dbURL,
		"ATES_AMQP_URL="+amqpURL,
		"ATES_SMTP_ADDR="+mail.SMTP,
		// The harness closes the seeded days itself; no scheduled close interferes.
		"ATES_CLOSE_DAY_SCHEDULE=@every 24h",
		"ATES_SHUTDOWN_TIMEOUT=5s",
	)
	httpAddrs := map[string]string{}
	for _, svc := range systemtest.Services {
		up := strings.ToUpper(svc.Name)
		httpAddrs[svc.Name] = systemtest.FreeAddr(t)
		env = append(env, "ATES_"+up+"_HTTP_ADDR="+httpAddrs[svc.Name])
		if svc.GRPCPort != 0 {
			grpcAddr := systemtest.FreeAddr(t)
			env = append(env, "ATES_"+up+"_GRPC_ADDR="+grpcAddr)
			if svc.Name == "auth" {
				env = append(env, "ATES_AUTH_ADDR="+grpcAddr)
			}
		}
	}
	s := &system{
		web:        "http://" + httpAddrs["analytics"],
		auth:       "http://" + httpAddrs["auth"],
		tasks:      "http://" + httpAddrs["tasks"],
		accounting: "http://" + httpAddrs["accounting"],
		analytics:  "http://" + httpAddrs["analytics"],
	}
	env = append(env,
		"ATES_WEB_AUTH_URL="+s.auth,
		"ATES_WEB_TASKS_URL="+s.tasks,
		"ATES_WEB_ACCOUNTING_URL="+s.accounting,
		"ATES_WEB_ANALYTICS_URL="+s.analytics,
	)
	systemtest.StartAll(t, bin, env, httpAddrs)

	// Users, through the API as anyone would register them (the first admin by the CLI).
	suffix := systemtest.RandomSuffix()
	newUser := func(name string) user {
		first := strings.ToLower(strings.Fields(name)[0])
		return user{Name: name, Email: first + "-" + suffix + "@example.com", PhotoHash: first + "-photo-hash-" + suffix}
	}
	s.admin = newUser("Ada Admin")
	ates(t, bin, env, "admin", "create", "--name", s.admin.Name, "--email", s.admin.Email, "--photo-hash", s.admin.PhotoHash)
	adminToken := s.login(t, s.admin)
	s.admin.ID = s.whoami(t, adminToken)
	register := func(name, role string) user {
		u := newUser(name)
		var out struct {
			User struct{ ID string } `json:"user"`
		}
		s.call(t, http.MethodPost, s.auth+"/v1/auth/register", adminToken,
			map[string]string{"name": u.Name, "email": u.Email, "role": role, "photo_hash": u.PhotoHash}, http.StatusOK, &out)
		u.ID = out.User.ID
		return u
	}
	s.manager = register("Meg Manager", "ROLE_MANAGER")
	s.accountant = register("Abe Accountant", "ROLE_ACCOUNTANT")
	s.ann, s.bob, s.cid = register("Ann Worker", "ROLE_WORKER"), register("Bob Worker", "ROLE_WORKER"), register("Cid Worker", "ROLE_WORKER")

	// Three past days of money for them, as taskhandler would have written it, then
	// closed by `ates close-day` as the schedule would have.
	today := time.Now().UTC()
	for i := range s.days {
		s.days[i] = today.AddDate(0, 0, i-len(s.days)).Format(time.DateOnly)
	}
	s.book = ledgertest.New(t, pool)
	s.money = ledgertest.ThreeDaysOf(s.book, [3]string(s.days[1:]), ledgerUser(s.ann), ledgerUser(s.bob), ledgerUser(s.cid))
	s.book.CompleteRewarded()
	ates(t, bin, env, "close-day", "--date", s.days[3])
	for _, day := range s.days[1:] {
		got := s.book.Balances(day)
		for id, want := range s.money.Want[day] {
			if got[id] != want {
				t.Fatalf("seeding: the close of %s gave worker %s %+v, the scenario says %+v", day, id, got[id], want)
			}
		}
	}
	return s
}

func ledgerUser(u user) ledgertest.User {
	return ledgertest.User{ID: uuid.MustParse(u.ID), Name: u.Name, Email: u.Email}
}

// ates runs the ates command with args and env and fails the test if it fails.
func ates(t *testing.T, bin string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ates %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// login logs u in through auth's REST API and returns the token.
func (s *system) login(t *testing.T, u user) string {
	t.Helper()
	var out struct{ Token string }
	s.call(t, http.MethodPost, s.auth+"/v1/auth/login", "", map[string]string{"photo_hash": u.PhotoHash}, http.StatusOK, &out)
	return out.Token
}

// whoami is the id of token's user.
func (s *system) whoami(t *testing.T, token string) string {
	t.Helper()
	var out struct {
		User struct{ ID string } `json:"user"`
	}
	s.call(t, http.MethodGet, s.auth+"/v1/auth/authenticate", token, nil, http.StatusOK, &out)
	return out.User.ID
}

// call makes a REST call with token (if any) and body (if any) as JSON, checks that it
// answers want, and decodes the answer into out (if any). It returns the answer's body.
func (s *system) call(t *testing.T, method, url, token string, body any, want int, out any) []byte {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s answered %s, want %d: %s", method, url, resp.Status, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, data, err)
		}
	}
	return data
}

// money is an amount as the pages show it: a plain integer.
func money(n int64) string { return fmt.Sprint(n) }
