package gc

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/storage"
)

// Metrics are the collector's Prometheus series.
type Metrics struct {
	runs, failures, blobs, bytes prometheus.Counter
	duration                     prometheus.Histogram
	lastRun                      prometheus.Gauge
}

// NewMetrics creates the series and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs:     prometheus.NewCounter(prometheus.CounterOpts{Name: "nora_gc_runs_total", Help: "Garbage collection passes applied."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "nora_gc_failures_total", Help: "Garbage collection passes that ended with an error."}),
		blobs:    prometheus.NewCounter(prometheus.CounterOpts{Name: "nora_gc_blobs_deleted_total", Help: "Blobs deleted by garbage collection."}),
		bytes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "nora_gc_bytes_freed_total", Help: "Bytes of blobs, uploads and unknown files freed by garbage collection."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "nora_gc_duration_seconds", Help: "Duration of garbage collection passes, plan and apply.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "nora_gc_last_run_timestamp_seconds", Help: "When the last garbage collection pass ended, in Unix seconds."}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.failures, m.blobs, m.bytes, m.duration, m.lastRun)
	}
	return m
}

// Run plans and applies one pass, then records it in m (if not nil) and
// in log.
func Run(ctx context.Context, store *storage.Store, opts Options, m *Metrics, log zerolog.Logger) (Result, error) {
	start := time.Now()
	log.Info().Msg("gc: pass started")
	var res Result
	p, err := Plan(ctx, store, opts)
	if err == nil {
		res, err = Apply(ctx, store, p)
	}
	took := time.Since(start)
	if m != nil {
		m.runs.Inc()
		m.blobs.Add(float64(res.Blobs))
		m.bytes.Add(float64(res.Bytes))
		m.duration.Observe(took.Seconds())
		m.lastRun.SetToCurrentTime()
		if err != nil {
			m.failures.Inc()
		}
	}
	ev := log.Info()
	if err != nil {
		ev = log.Error().Err(err)
	}
	ev.Int("manifests", res.Manifests).Int("links", res.Links).Int("blobs", res.Blobs).
		Int("uploads", res.Uploads).Int("files", res.Files).Int64("bytes_freed", res.Bytes).
		Int("skipped", res.Skipped).Int("failed", res.Failed).Int64("duration_ms", took.Milliseconds()).Msg("gc: pass finished")
	return res, err
}
