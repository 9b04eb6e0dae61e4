package pgutil

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterPoolMetrics exports pool's statistics (pgxpool.Stat) on reg, read at each
// scrape: ates_db_pool_connections{state=acquired|idle|constructing},
// ates_db_pool_max_connections, ates_db_pool_acquires_total,
// ates_db_pool_empty_acquires_total (acquires that had to wait for a connection) and
// ates_db_pool_acquire_wait_seconds_total. Every service with a pool registers it.
func RegisterPoolMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) {
	reg.MustRegister(&poolCollector{pool: pool,
		conns: prometheus.NewDesc("ates_db_pool_connections",
			"PostgreSQL pool connections by state: acquired (in use), idle, constructing.", []string{"state"}, nil),
		max: prometheus.NewDesc("ates_db_pool_max_connections",
			"The PostgreSQL pool's maximum size.", nil, nil),
		acquires: prometheus.NewDesc("ates_db_pool_acquires_total",
			"Connections acquired from the PostgreSQL pool.", nil, nil),
		empty: prometheus.NewDesc("ates_db_pool_empty_acquires_total",
			"Acquires that found no idle connection and had to wait for one (or for a new one).", nil, nil),
		wait: prometheus.NewDesc("ates_db_pool_acquire_wait_seconds_total",
			"Total time spent acquiring PostgreSQL pool connections, in seconds.", nil, nil),
	})
}

type poolCollector struct {
	pool                              *pgxpool.Pool
	conns, max, acquires, empty, wait *prometheus.Desc
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.conns
	ch <- c.max
	ch <- c.acquires
	ch <- c.empty
	ch <- c.wait
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.empty, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.wait, prometheus.CounterValue, s.AcquireDuration().Seconds())
}
