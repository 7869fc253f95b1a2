package cmd

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nora-registry/nora/storage"
)

// newMetricsRegistry returns the server's Prometheus registry with the
// process's series: Go runtime, process, nora_build_info, and the
// store's own (metadata file size, S3 requests).
func newMetricsRegistry(store *storage.Store) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "nora_build_info",
		Help:        "Always 1; its labels name the running build.",
		ConstLabels: prometheus.Labels{"version": buildVersion(), "commit": commit, "go": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		info,
	)
	return reg, store.RegisterMetrics(reg)
}
