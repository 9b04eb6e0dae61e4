package web

import (
	"net/http"
	"net/url"
	"strconv"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
)

// auditPageSize is how many audit log rows one page shows.
const auditPageSize = 50

// balanceBlock is a worker's balance for a day with one page of its audit log.
type balanceBlock struct {
	Balance *accountingv1.GetBalanceResponse
	// NextURL is the link to the next page of the log; empty on the last.
	NextURL string
}

type workerPage struct {
	Date      string
	Balance   balanceBlock
	OpenTasks []*tasksv1.Task
}

type accountingPage struct {
	Date     string
	Stats    *accountingv1.GetStatsResponse
	WorkerID string
	// Balance is set when a worker was asked for.
	Balance *balanceBlock
}

// balance reads userID's balance (empty: the caller's) for date, and the page of the
// log after pageToken; next makes the link to the following page from its token.
func (h *handler) balance(r *http.Request, s *session, userID, date, pageToken string, next func(token string) string) (balanceBlock, error) {
	q := url.Values{"date": {date}, "page_size": {strconv.Itoa(auditPageSize)}}
	if userID != "" {
		q.Set("user_id", userID)
	}
	if pageToken != "" {
		q.Set("page_token", pageToken)
	}
	var b balanceBlock
	b.Balance = &accountingv1.GetBalanceResponse{}
	if err := h.api.call(r, s.token, http.MethodGet, h.opts.AccountingURL, "/v1/accounting/balance", q, nil, b.Balance); err != nil {
		return b, err
	}
	if t := b.Balance.GetNextPageToken(); t != "" {
		b.NextURL = next(t)
	}
	return b, nil
}

// workerPage shows the caller's own balance for a day (today by default), its audit
// log paged, and the caller's open tasks.
func (h *handler) workerPage(w http.ResponseWriter, r *http.Request, s *session) {
	p, err := h.workerData(r, s)
	if err != nil {
		h.fail(w, r, s, "My balance", err)
		return
	}
	h.render(w, http.StatusOK, "balance", s.view("My balance", p))
}

func (h *handler) workerData(r *http.Request, s *session) (workerPage, error) {
	p := workerPage{Date: h.dateParam(r, "date")}
	var err error
	p.Balance, err = h.balance(r, s, "", p.Date, r.URL.Query().Get("page_token"), func(t string) string {
		return pageURL("/worker", url.Values{"date": {p.Date}, "page_token": {t}})
	})
	if err != nil {
		return p, err
	}
	var tasks tasksv1.ListTasksResponse
	if err := h.api.call(r, s.token, http.MethodGet, h.opts.TasksURL, "/v1/tasks",
		url.Values{"status": {tasksv1.TaskStatus_TASK_STATUS_IN_PROGRESS.String()}, "page_size": {"500"}}, nil, &tasks); err != nil {
		return p, err
	}
	// A worker lists the tasks they hold; other roles list everyone's, so keep the
	// caller's own.
	for _, t := range tasks.GetTasks() {
		if t.GetAssignedTo() == s.user.GetId() {
			p.OpenTasks = append(p.OpenTasks, t)
		}
	}
	return p, nil
}

// accountingPage shows the company's stats for a day and, when asked, a worker's
// balance and audit log for a day.
func (h *handler) accountingPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	p := accountingPage{Date: h.dateParam(r, "date"), WorkerID: q.Get("worker_id")}
	p.Stats = &accountingv1.GetStatsResponse{}
	if err := h.api.call(r, s.token, http.MethodGet, h.opts.AccountingURL, "/v1/accounting/stats",
		url.Values{"date": {p.Date}}, nil, p.Stats); err != nil {
		h.fail(w, r, s, "Accounting", err)
		return
	}
	if p.WorkerID != "" {
		b, err := h.balance(r, s, p.WorkerID, p.Date, q.Get("page_token"), func(t string) string {
			return pageURL("/accounting", url.Values{"date": {p.Date}, "worker_id": {p.WorkerID}, "page_token": {t}})
		})
		if err != nil {
			h.fail(w, r, s, "Accounting", err)
			return
		}
		p.Balance = &b
	}
	h.render(w, http.StatusOK, "accounting", s.view("Accounting", p))
}
