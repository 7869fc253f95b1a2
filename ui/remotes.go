package ui

import (
	"time"

	"github.com/nora-registry/nora/replicate"
)

// MirrorStats is how the pull-through cache has done since start.
type MirrorStats struct {
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
	// HitRatio is Hits over all requests, 0 with none.
	HitRatio float64 `json:"hitRatio"`
}

// RemoteStatus is one replication remote's state on the overview.
type RemoteStatus struct {
	Name        string    `json:"name"`
	Kind        string    `json:"kind"` // push or pull
	Queued      uint64    `json:"queued"`
	LagSec      float64   `json:"lagSeconds"`
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
}

// WithMirror shows the mirror's hit ratio on the overview: hits reports
// requests served from the cache and fetched upstream (mirror.Mirror.Hits).
func WithMirror(hits func() (hits, misses uint64)) Option {
	return func(h *Handler) { h.mirrorHits = hits }
}

// WithReplication shows each replication remote's queue and lag on the
// overview; status is replicate.Replicator.Status.
func WithReplication(status func() []replicate.RemoteStatus) Option {
	return func(h *Handler) { h.replStatus = status }
}

// remotes fills in o's mirror and replication figures. They are the
// registry's as a whole, so only a caller who sees every repository
// gets them.
func (h *Handler) remotes(o *Overview) {
	if h.mirrorHits != nil {
		hits, misses := h.mirrorHits()
		o.Mirror = &MirrorStats{Hits: hits, Misses: misses}
		if hits+misses > 0 {
			o.Mirror.HitRatio = float64(hits) / float64(hits+misses)
		}
	}
	if h.replStatus == nil {
		return
	}
	for _, s := range h.replStatus() {
		o.Replication = append(o.Replication, RemoteStatus{Name: s.Name, Kind: s.Kind, Queued: s.Queued,
			LagSec: s.Lag.Seconds(), LastSuccess: s.LastSuccess, LastError: s.LastError})
	}
}
