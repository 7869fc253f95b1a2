package storage

import (
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers the store's series with reg: the metadata
// file's size, read at each scrape, its compactions, and, with blobs on
// S3, the driver's requests, errors and retries by S3 operation.
func (s *Store) RegisterMetrics(reg prometheus.Registerer) error {
	path := filepath.Join(s.root, metaFile)
	cs := []prometheus.Collector{prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nora_storage_metadata_bytes",
		Help: "Size of the metadata file (metadata.db) on disk.",
	}, func() float64 {
		fi, err := os.Stat(path)
		if err != nil {
			return 0
		}
		return float64(fi.Size())
	}), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "nora_storage_metadata_compactions_total",
		Help: "Compactions of the metadata file (registry compact, or the server on its own).",
	}, func() float64 { return float64(s.compactions.Load()) })}
	if d, ok := s.blobs.(*S3); ok {
		cs = append(cs, d.metrics.requests, d.metrics.errors, d.metrics.retries)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
