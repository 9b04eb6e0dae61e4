package broker

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a delivery, the outcome label of ates_consumer_events_total.
const (
	outcomeAcked        = "acked"
	outcomeRetried      = "retried"
	outcomeDeadLettered = "dead_lettered"
)

// unroutedLabel is the routing_key label of deliveries under a key the consumer has no
// route for (dead-lettered: no handler).
const unroutedLabel = "(unrouted)"

// consumerMetrics are one consumer's Prometheus metrics.
type consumerMetrics struct {
	events   *prometheus.CounterVec   // by routing_key, outcome
	duration *prometheus.HistogramVec // by routing_key
	paused   prometheus.Gauge
	// unverified counts events dead-lettered for a missing or wrong signature, by
	// routing_key: forged events, or a producer signing with a key the consumer lacks.
	unverified *prometheus.CounterVec
}

func newConsumerMetrics(reg prometheus.Registerer, c *Conn, queue string) *consumerMetrics {
	labels := prometheus.Labels{"queue": queue}
	m := &consumerMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "ates_consumer_events_total",
			Help:        "Deliveries a consumer settled, by routing key and outcome: acked (applied, or rejected for a business reason), retried (a transient failure: back through the retry queue) or dead_lettered (can never be applied). A burst of dead_lettered is worth an alert.",
			ConstLabels: labels,
		}, []string{"routing_key", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "ates_consumer_handle_seconds",
			Help:        "Time from taking a delivery to settling it, in-process retries included.",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"routing_key"}),
		unverified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "ates_consumer_unverified_events_total",
			Help:        "Events dead-lettered because their signature was missing, made with an unknown key or wrong: forged events, or a producer and consumer whose keys disagree. Any increase is worth an alert.",
			ConstLabels: labels,
		}, []string{"routing_key"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "ates_consumer_paused",
			Help:        "1 while the consumer's circuit breaker is open: its database does not answer and it takes no deliveries.",
			ConstLabels: labels,
		}),
	}
	if reg == nil {
		return m
	}
	m.events = register(reg, m.events)
	m.duration = register(reg, m.duration)
	m.paused = register(reg, m.paused)
	m.unverified = register(reg, m.unverified)
	register(reg, prometheus.Collector(&deadLetterDepth{conn: c, queue: queue, desc: prometheus.NewDesc(
		"ates_dead_letter_messages",
		"Messages waiting in the queue's dead-letter queue for an operator (ates dlq list|replay|purge).",
		nil, labels,
	)}))
	return m
}

// register registers col, or returns the collector registered before under the same
// description (a consumer that restarts in the same process).
func register[C prometheus.Collector](reg prometheus.Registerer, col C) C {
	if err := reg.Register(col); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return col
}

// deadLetterDepth reports the depth of a dead-letter queue when scraped.
type deadLetterDepth struct {
	conn  *Conn
	queue string
	desc  *prometheus.Desc
}

func (d *deadLetterDepth) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d *deadLetterDepth) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := d.conn.QueueDepth(ctx, DeadLetterQueue(d.queue))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(d.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, float64(n))
}
