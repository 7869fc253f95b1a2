package auth

import "github.com/prometheus/client_golang/prometheus"

// metrics are the service's Prometheus collectors.
type metrics struct {
	issued   *prometheus.CounterVec // by identity kind
	failures *prometheus.CounterVec // by reason
}

// WithMetrics registers the service's metrics with reg:
// nora_auth_tokens_issued_total{kind} and nora_auth_failures_total{reason}
// (invalid_token, bad_credentials, unsupported_scheme, invalid_id_token,
// invalid_refresh_token, denied).
func WithMetrics(reg prometheus.Registerer) Option {
	return func(s *Service) { s.metrics = newMetrics(reg) }
}

// newMetrics makes the collectors, registered with reg unless it is nil.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_auth_tokens_issued_total",
			Help: "Registry tokens issued by the token service, by the kind of identity they were issued to.",
		}, []string{"kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_auth_failures_total",
			Help: "Rejected credentials and denied requests, by reason.",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.issued, m.failures)
	}
	return m
}
