package server

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// processMetrics are the Go runtime's and the process's metrics (go_*, process_*):
// registered once per process, however many servers it runs, and served without a
// service label.
var processMetrics = sync.OnceValue(func() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
})

// serviceLabel is the constant label every metric a server registers carries: the
// service's name, the same whether it runs alone or under `ates all`.
const serviceLabel = "service"

// SharedMetrics is one /metrics for every server of a process that runs several
// services (`ates all`): the process metrics once, then each joined server's metrics,
// told apart by their service label. Only the server named servedBy serves it; the
// others' /metrics answer 404 and say where to look.
type SharedMetrics struct {
	servedBy string

	mu       sync.Mutex
	addr     string // servedBy's HTTP address, once it has joined
	services []prometheus.Gatherer
}

// NewSharedMetrics returns the metrics of a process whose server named servedBy serves
// them on its HTTP port.
func NewSharedMetrics(servedBy string) *SharedMetrics {
	return &SharedMetrics{servedBy: servedBy}
}

type sharedMetricsKey struct{}

// WithSharedMetrics returns a context under which every Server's Serve joins m instead
// of serving its own /metrics.
func WithSharedMetrics(ctx context.Context, m *SharedMetrics) context.Context {
	return context.WithValue(ctx, sharedMetricsKey{}, m)
}

// join adds s's metrics to m.
func (m *SharedMetrics) join(s *Server) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.services = append(m.services, s.registry)
	if s.opts.Name == m.servedBy {
		m.addr = s.HTTPAddr()
	}
}

// Gather gathers the process metrics and those of every joined server.
func (m *SharedMetrics) Gather() ([]*dto.MetricFamily, error) {
	m.mu.Lock()
	g := append(prometheus.Gatherers{processMetrics()}, m.services...)
	m.mu.Unlock()
	return g.Gather()
}

// elsewhere is what the /metrics of a server that does not serve m answers.
func (m *SharedMetrics) elsewhere(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	at := m.servedBy + "'s HTTP port"
	if m.addr != "" {
		at += " (" + m.addr + ")"
	}
	m.mu.Unlock()
	http.Error(w, fmt.Sprintf("this process runs several services: the metrics of all of them are at /metrics on %s", at), http.StatusNotFound)
}

// serveMetrics is /metrics: the process metrics and this server's, or, under
// SharedMetrics, every server's on the one that serves them and 404 on the others.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.shared == nil:
		promhttp.HandlerFor(prometheus.Gatherers{processMetrics(), s.registry}, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	case s.shared.servedBy == s.opts.Name:
		promhttp.HandlerFor(s.shared, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	default:
		s.shared.elsewhere(w, r)
	}
}

// Registry is where the service registers its own metrics: each gets the constant
// label service="<Options.Name>".
func (s *Server) Registry() prometheus.Registerer { return s.metrics }

// Gatherer gathers the metrics registered on Registry (not the process metrics).
func (s *Server) Gatherer() prometheus.Gatherer { return s.registry }
