package cmd

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/replicate"
	"github.com/nora-registry/nora/storage"
)

// startReplication starts the continuous replication of f's [replicate]
// section. Its workers read and write this registry through its own API
// served in process, with no credentials and no socket. stop waits for
// them, so call it before closing the store.
func startReplication(ctx context.Context, f File, store *storage.Store, reg *prometheus.Registry, log zerolog.Logger) (*replicate.Replicator, func(), error) {
	var r prometheus.Registerer
	if reg != nil {
		r = reg
	}
	log = log.With().Str("component", "replicate").Logger()
	local, stopLocal := replicate.Local(registry.New(store, registry.WithLogger(log), registry.WithPartialIndexes()))
	repl, err := replicate.Start(ctx, f.Replicate, store, local, r, log)
	if err != nil {
		stopLocal()
		return nil, nil, err
	}
	return repl, func() {
		repl.Stop()
		stopLocal()
	}, nil
}

// replicationStatusHandler serves GET /replicate/status on the admin
// socket: each remote's status as JSON.
func replicationStatusHandler(repl *replicate.Replicator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /replicate/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(repl.Status())
	})
	return mux
}
