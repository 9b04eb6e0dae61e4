package web_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/browsertest"
	"github.com/ates/ates/services/internal/systemtest"
)

// TestBrowser runs the pages in headless Chromium against the whole system (see
// startSystem), one user's story per subtest, in order (the admin's figures of today
// come before the manager's task changes them). Each subtest leaves a screenshot of
// every step in .cache/screenshots/TestBrowser-<subtest>/.
func TestBrowser(t *testing.T) {
	s := startSystem(t)
	t.Run("an admin sees the earnings chart of the seeded days", s.adminSeesEarnings)
	t.Run("a worker sees their balance and is refused the admin page", s.workerSeesBalance)
	t.Run("a manager creates a task and its worker completes it", s.managerCreatesWorkerCompletes)
	t.Run("a wrong photo hash is refused", s.wrongPhotoHash)
	t.Run("logging out ends the session", s.logout)
	t.Run("every page passes an accessibility audit", s.everyPageIsAccessible)
}

// logIn opens the login page in b, logs u in and checks that the page of u's role
// (path) greets them.
func (s *system) logIn(t *testing.T, b *browsertest.Browser, u user, path string) {
	t.Helper()
	require.Equal(t, http.StatusOK, b.Go(s.web+"/"), "/ without a session ends on the login page")
	require.Equal(t, s.web+"/login", b.URL())
	b.Wait("#login")
	require.Equal(t, "Photo hash", b.Text(`label[for="photo-hash"]`))
	b.Fill("#photo-hash", u.PhotoHash)
	b.Shot("log in as " + u.Name)
	require.Equal(t, http.StatusOK, b.Submit("#login-submit"))
	require.Equal(t, s.web+path, b.URL(), "the role's home page")
	require.Contains(t, b.Text("#whoami"), u.Name)
}

func (s *system) adminSeesEarnings(t *testing.T) {
	b := browsertest.Start(t)
	s.logIn(t, b, s.admin, "/admin")
	require.Equal(t, s.admin.Name+" (admin)", b.Text("#whoami"))
	b.Shot("admin page of today")

	// Today: only Cid starts below zero (his carry of the last seeded day).
	cid := s.money.Want[s.days[3]][ledgerUser(s.cid).ID]
	require.Equal(t, 1, b.Count("#below-zero-workers tr[data-user-id]"), "only Cid is below zero today")
	row := `#below-zero-workers tr[data-user-id="` + s.cid.ID + `"]`
	require.Equal(t, []string{s.cid.Name, s.cid.Email, money(cid.Carry)}, cells(b, row))

	// The seeded days, chosen in the form.
	b.SetValue("#from", s.days[0])
	b.SetValue("#to", s.days[3])
	b.Shot("range chosen")
	require.Equal(t, http.StatusOK, b.Submit("#earnings-submit"))
	require.Equal(t, s.web+"/admin?from="+s.days[0]+"&to="+s.days[3], b.URL())
	b.Wait("#earnings-chart")
	b.Shot("earnings of the seeded days")

	var total int64
	want := map[string]string{s.days[0]: "0"} // a day without activity is listed too
	var labels []string
	var values []int64
	for _, day := range s.days {
		e := s.money.Stats[day].Earnings
		total += e
		want[day] = money(e)
		labels = append(labels, day)
		values = append(values, e)
	}
	require.Equal(t, money(total), b.Text("#earnings-total"), "-64: 0 + 5 + 5 - 74")
	got := map[string]string{}
	for _, r := range browsertest.Evaluate[[][]string](b, `[...document.querySelectorAll("#earnings-days tr[data-date]")].
		map(r => [r.dataset.date, r.cells[r.cells.length - 1].innerText.trim()])`) {
		got[r[0]] = r[1]
	}
	require.Equal(t, want, got, "one row per day, oldest first not checked here")
	require.Equal(t, labels, browsertest.Evaluate[[]string](b, `[...document.querySelectorAll("#earnings-days tr[data-date]")].map(r => r.dataset.date)`),
		"the table's days in order")

	// The chart: Chart.js drew the same points, and the canvas has pixels.
	type chart struct {
		Labels []string
		Values []int64
		Inked  int
	}
	c := browsertest.Evaluate[chart](b, `(() => {
		const canvas = document.getElementById("earnings-chart");
		const ch = window.Chart && Chart.getChart(canvas);
		const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
		let inked = 0;
		for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) inked++;
		return {labels: ch ? ch.data.labels : [], values: ch ? ch.data.datasets[0].data : [], inked: inked};
	})()`)
	require.Equal(t, labels, c.Labels, "the chart's days")
	require.Equal(t, values, c.Values, "the chart's bars")
	require.Positive(t, c.Inked, "the canvas is drawn")

	// The top task of the range: the first of the two rewards of 40 (day 1's, Ann's).
	top := s.topTask(t)
	require.Equal(t, "/tasks/"+top, b.Attr("#top-task-link", "href"))
	require.Contains(t, b.Text("#top-task"), "40")
	require.Equal(t, http.StatusOK, b.Submit("#top-task-link"))
	require.Equal(t, top, b.Attr("#task", "data-task-id"))
	if page := b.Text("#task"); !strings.Contains(page, s.ann.Name) && !strings.Contains(page, s.ann.ID) {
		t.Errorf("the top task's page names neither Ann nor her id as its assignee:\n%s", page)
	}
	b.Shot("top task")
	b.NoScriptErrors()
}

// topTask is the id of the scenario's top task on its days: Ann's task rewarded 40 on
// the first day (Bob's 40 came later).
func (s *system) topTask(t *testing.T) string {
	t.Helper()
	for _, r := range s.book.Rows(ledgerUser(s.ann).ID, s.days[1]) {
		if r.Kind == "reward" {
			require.EqualValues(t, 40, r.Amount)
			return r.Task.String()
		}
	}
	t.Fatal("the scenario has no reward for Ann on its first day")
	return ""
}

// cells are the trimmed texts of the cells of the table row sel.
func cells(b *browsertest.Browser, sel string) []string {
	return browsertest.Evaluate[[]string](b, `[...document.querySelector(`+jsString(sel)+`).cells].map(c => c.innerText.trim())`)
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// balance is the balance block of the page b shows.
func balance(b *browsertest.Browser) []string {
	var out []string
	for _, id := range []string{"opening", "rewards", "fees", "closing", "payout", "carry", "closed"} {
		out = append(out, b.Text("#balance-"+id))
	}
	return out
}

func (s *system) workerSeesBalance(t *testing.T) {
	b := browsertest.Start(t)
	s.logIn(t, b, s.bob, "/worker")
	require.Equal(t, s.bob.Name+" (worker)", b.Text("#whoami"))
	require.Zero(t, b.Count("#nav-admin"), "no link to the admin page for a worker")
	b.Shot("worker page of today")

	bob := ledgerUser(s.bob).ID
	for _, day := range s.days[2:] {
		w := s.money.Want[day][bob]
		require.Equal(t, http.StatusOK, b.Go(s.web+"/worker?date="+day))
		require.Equal(t, []string{money(w.Opening), money(w.Rewards), money(w.Fees), money(w.Closing),
			money(w.Payout), money(w.Carry), "closed"}, balance(b), "Bob's balance of %s", day)
		rows := len(s.book.Rows(bob, day))
		if w.Payout > 0 {
			rows++ // the close's payout row
		}
		require.Equal(t, rows, b.Count("#audit-log tr[data-entry-id]"), "Bob's audit rows of %s", day)
		b.Shot("balance of " + day)
	}

	// The admin page: the analytics API refuses Bob, and the page says what it said.
	var refusal struct{ Message string }
	s.call(t, http.MethodGet, s.analytics+"/v1/analytics/company?date="+s.days[3], s.login(t, s.bob), nil, http.StatusForbidden, &refusal)
	require.NotEmpty(t, refusal.Message)
	require.Equal(t, http.StatusForbidden, b.Go(s.web+"/admin"))
	require.Equal(t, "alert", b.Attr("#error", "role"))
	require.Contains(t, b.Text("#error"), refusal.Message)
	require.Contains(t, b.Text("#error"), "refused")
	require.Zero(t, b.Count("#earnings-chart, #earnings-total, #below-zero-workers"), "no admin figures")
	b.Shot("admin page refused")
	b.NoScriptErrors()
}

// task is a task as the tasks API answers it.
type task struct {
	ID           string `json:"id"`
	AssigneeID   string `json:"assigned_to"`
	AssigneeName string `json:"assignee_name"`
	Fee          string `json:"fee"`
	Reward       string `json:"reward"`
	Status       string `json:"status"`
}

func (s *system) managerCreatesWorkerCompletes(t *testing.T) {
	b := browsertest.Start(t)
	s.logIn(t, b, s.manager, "/manager")
	description := "water the plants " + systemtest.RandomSuffix()
	b.Fill("#task-description", description)
	b.Shot("task described")
	b.Click("#create-task-submit")
	b.Wait("#created-task")
	b.Shot("task created and assigned")

	// The page shows the task as the API has it: assigned, with its fee and reward.
	id := b.Attr("#created-task", "data-task-id")
	require.NotEmpty(t, id)
	var got struct{ Task task }
	s.call(t, http.MethodGet, s.tasks+"/v1/task/"+id, s.login(t, s.manager), nil, http.StatusOK, &got)
	worker := s.worker(t, got.Task.AssigneeID)
	require.Equal(t, worker.Name, got.Task.AssigneeName, "the API names the assignee")
	require.Equal(t, worker.Name, b.Text("#created-assignee"), "the assignee by name")
	require.Equal(t, got.Task.Fee, b.Text("#created-fee"))
	require.Equal(t, got.Task.Reward, b.Text("#created-reward"))
	require.Contains(t, b.Text("#created-task"), description)
	b.NoScriptErrors()

	// The task's own page names the assignee too.
	require.Equal(t, http.StatusOK, b.Go(s.web+"/tasks/"+id))
	require.Equal(t, worker.Name, b.Text("#task-assignee"))
	b.Shot("task page")
	b.NoScriptErrors()

	// The worker it landed on sees it among their open tasks and completes it.
	w := browsertest.Start(t)
	s.logIn(t, w, worker, "/worker")
	opening := s.money.Want[s.days[3]][ledgerUser(worker).ID].Carry // nothing else happened today
	fee, reward := atoi(t, got.Task.Fee), atoi(t, got.Task.Reward)
	require.Equal(t, []string{money(opening), "0", money(fee), money(opening + fee), "0", "0", "open"}, balance(w),
		"today before the completion: the fee only")
	row := `#open-tasks tr[data-task-id="` + id + `"]`
	require.Contains(t, w.Text(row), description)
	w.Shot("worker sees the new task")
	require.True(t, browsertest.Evaluate[bool](w, `typeof window.htmx === "object"`), "htmx runs the Complete button")
	w.Click(row + " button.complete-task")
	w.WaitGone(row)
	w.WaitText("#balance-rewards", money(reward))
	w.Shot("task completed")
	after := []string{money(opening), money(reward), money(fee), money(opening + fee + reward), "0", "0", "open"}
	require.Equal(t, after, balance(w), "the closing grew by the reward")
	require.Equal(t, http.StatusOK, w.Go(s.web+"/worker"))
	require.Equal(t, after, balance(w), "and stays so on a fresh load")
	require.Zero(t, w.Count(row))
	w.Shot("balance after the completion")

	s.call(t, http.MethodGet, s.tasks+"/v1/task/"+id, s.login(t, s.manager), nil, http.StatusOK, &got)
	require.Equal(t, "TASK_STATUS_COMPLETE", got.Task.Status)
	w.NoScriptErrors()
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

func (s *system) wrongPhotoHash(t *testing.T) {
	b := browsertest.Start(t)
	require.Equal(t, http.StatusOK, b.Go(s.web+"/login"))
	b.Fill("#photo-hash", "not-anyones-photo-hash")
	b.Shot("wrong photo hash typed")
	require.Equal(t, http.StatusUnauthorized, b.PressEnter("#photo-hash"), "submitted from the keyboard")
	require.Equal(t, "alert", b.Attr("#error", "role"))
	require.NotEmpty(t, b.Text("#error"))
	b.Wait("#login")
	_, ok := b.Cookie(s.web, "ates_session")
	require.False(t, ok, "no session cookie")
	b.Shot("login refused")
	b.NoScriptErrors()
}

func (s *system) logout(t *testing.T) {
	b := browsertest.Start(t)
	s.logIn(t, b, s.accountant, "/accounting")
	c, ok := b.Cookie(s.web, "ates_session")
	require.True(t, ok, "the session cookie")
	require.True(t, c.HTTPOnly, "HttpOnly")
	require.Equal(t, network.CookieSameSiteStrict, c.SameSite)
	require.Equal(t, "/", c.Path)

	// The accountant's page: the company's figures of the last seeded day.
	require.Equal(t, http.StatusOK, b.Go(s.web+"/accounting?date="+s.days[3]))
	stats := s.money.Stats[s.days[3]]
	require.Equal(t, []string{money(stats.Earnings), money(stats.Rewards), money(stats.Fees)},
		[]string{b.Text("#stats-earnings"), b.Text("#stats-rewards"), b.Text("#stats-fees")})
	b.Shot("accountant page")

	require.Equal(t, http.StatusOK, b.Submit("#logout"))
	require.Equal(t, s.web+"/login", b.URL())
	b.Wait("#login")
	_, ok = b.Cookie(s.web, "ates_session")
	require.False(t, ok, "the cookie is cleared")
	b.Shot("logged out")

	// The old cookie, put back, opens nothing: auth revoked its token.
	s.call(t, http.MethodGet, s.auth+"/v1/auth/authenticate", c.Value, nil, http.StatusUnauthorized, nil)
	b.SetCookie(s.web, c)
	require.Equal(t, http.StatusOK, b.Go(s.web+"/accounting"))
	require.Equal(t, s.web+"/login", b.URL(), "sent back to the login page")
	b.Wait("#login")
	b.Shot("old cookie refused")
	b.NoScriptErrors()
}
