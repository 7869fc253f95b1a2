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
}

// backlog reports each push target's queue when scraped, so the lag
// grows while a worker waits on a target that is down.
type backlog struct {
	events     EventLog
	targets    []string
	queue, lag *prometheus.Desc
}

func (b *backlog) Describe(ch chan<- *prometheus.Desc) { ch <- b.queue; ch <- b.lag }

func (b *backlog) Collect(ch chan<- prometheus.Metric) {
	for _, t := range b.targets {
		n, lag := QueueOf(b.events, t)
		ch <- prometheus.MustNewConstMetric(b.queue, prometheus.GaugeValue, float64(n), t)
		ch <- prometheus.MustNewConstMetric(b.lag, prometheus.GaugeValue, lag.Seconds(), t)
	}
}

// newMetrics registers replication's metrics with reg, nil for none;
// targets are the push targets whose queues events holds.
func newMetrics(reg prometheus.Registerer, events EventLog, targets []string) (*metrics, error) {
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
	}
	queue := &backlog{
		events: events, targets: targets,
		queue: prometheus.NewDesc("nora_replicate_queue_length", "Events a push target has yet to handle.", []string{"remote"}, nil),
		lag:   prometheus.NewDesc("nora_replicate_lag_seconds", "Age of the oldest event a push target has yet to handle; 0 when it is up to date.", []string{"remote"}, nil),
	}
	for _, c := range []prometheus.Collector{m.items, m.bytes, m.failures, queue} {
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
