package replicate

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are replication's Prometheus series, labelled by remote name
// only: repositories would make the series unbounded. A nil *metrics
// counts nothing.
type metrics struct {
	items    *prometheus.CounterVec // remote
	bytes    *prometheus.CounterVec // remote
	failures *prometheus.CounterVec // remote
	queue    *prometheus.GaugeVec   // remote
	lag      *prometheus.GaugeVec   // remote
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_replicate_items_total",
			Help: "Tags and manifests copied to a push target or from a pull source, and deletes replicated, by remote.",
		}, []string{"remote"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_replicate_bytes_total",
			Help: "Bytes of blobs and manifests replicated, by remote (blobs mounted or already there count none).",
		}, []string{"remote"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_replicate_failures_total",
			Help: "Failed replication attempts, each retried with backoff, by remote.",
		}, []string{"remote"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nora_replicate_queue_length",
			Help: "Events a push target has yet to handle.",
		}, []string{"remote"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nora_replicate_lag_seconds",
			Help: "Age of the oldest event a push target has yet to handle; 0 when it is up to date.",
		}, []string{"remote"}),
	}
	for _, c := range []prometheus.Collector{m.items, m.bytes, m.failures, m.queue, m.lag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) copied(remote string, bytes int64) {
	if m != nil {
		m.items.WithLabelValues(remote).Inc()
		m.bytes.WithLabelValues(remote).Add(float64(bytes))
	}
}

func (m *metrics) failure(remote string) {
	if m != nil {
		m.failures.WithLabelValues(remote).Inc()
	}
}

func (m *metrics) backlog(remote string, n uint64, lagSeconds float64) {
	if m != nil {
		m.queue.WithLabelValues(remote).Set(float64(n))
		m.lag.WithLabelValues(remote).Set(lagSeconds)
	}
}
