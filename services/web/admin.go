package web

import (
	"net/http"
	"net/url"

	analyticsv1 "github.com/ates/ates/gen/analytics/v1"
	"github.com/ates/ates/services/internal/bizday"
)

// defaultRangeDays is how many days the admin page shows when no range is asked for.
const defaultRangeDays = 30

type adminPage struct {
	From, To string
	Workers  *analyticsv1.GetWorkerStatsResponse
	Earnings *analyticsv1.GetCompanyEarningsResponse
	Chart    chartData
	// TopTask is nil when no task was completed in the range.
	TopTask *analyticsv1.GetTopTaskResponse
}

// chartData is what static/app.js draws.
type chartData struct {
	Labels []string `json:"labels"`
	Values []int64  `json:"values"`
}

// adminPage shows today's workers below zero and, for a range of days (the last 30
// through today by default), the company's earnings and the top task.
func (h *handler) adminPage(w http.ResponseWriter, r *http.Request, s *session) {
	today := h.today()
	p := adminPage{From: r.URL.Query().Get("from"), To: r.URL.Query().Get("to")}
	if p.To == "" {
		p.To = bizday.Format(today)
	}
	if p.From == "" {
		p.From = bizday.Format(today.AddDate(0, 0, 1-defaultRangeDays))
	}
	rng := url.Values{"from": {p.From}, "to": {p.To}}
	p.Workers = &analyticsv1.GetWorkerStatsResponse{}
	if err := h.api.call(r, s.token, http.MethodGet, h.opts.AnalyticsURL, "/v1/analytics/workers",
		url.Values{"date": {bizday.Format(today)}}, nil, p.Workers); err != nil {
		h.fail(w, r, s, "Analytics", err)
		return
	}
	p.Earnings = &analyticsv1.GetCompanyEarningsResponse{}
	if err := h.api.call(r, s.token, http.MethodGet, h.opts.AnalyticsURL, "/v1/analytics/company", rng, nil, p.Earnings); err != nil {
		h.fail(w, r, s, "Analytics", err)
		return
	}
	p.Chart = chartData{Labels: []string{}, Values: []int64{}}
	for _, d := range p.Earnings.GetDays() {
		p.Chart.Labels = append(p.Chart.Labels, d.GetDate())
		p.Chart.Values = append(p.Chart.Values, d.GetEarnings())
	}
	top := &analyticsv1.GetTopTaskResponse{}
	switch err := h.api.call(r, s.token, http.MethodGet, h.opts.AnalyticsURL, "/v1/analytics/task", rng, nil, top); {
	case notFound(err): // no task completed in the range: the page says so
	case err != nil:
		h.fail(w, r, s, "Analytics", err)
		return
	default:
		p.TopTask = top
	}
	h.render(w, http.StatusOK, "admin", s.view("Analytics", p))
}
