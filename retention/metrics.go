package retention

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus series of applied retention passes. They
// carry no repository or tag label, so their number stays fixed.
type Metrics struct {
	tags, manifests prometheus.Counter
}

// NewMetrics creates the series and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		tags:      prometheus.NewCounter(prometheus.CounterOpts{Name: "nora_retention_tags_deleted_total", Help: "Tags deleted by retention rules."}),
		manifests: prometheus.NewCounter(prometheus.CounterOpts{Name: "nora_retention_manifests_deleted_total", Help: "Untagged manifests deleted by retention rules."}),
	}
	if reg != nil {
		reg.MustRegister(m.tags, m.manifests)
	}
	return m
}

// Record counts the deletions of one applied pass.
func (m *Metrics) Record(res Result) {
	m.tags.Add(float64(res.Tags))
	m.manifests.Add(float64(res.Manifests))
}
