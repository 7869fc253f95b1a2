package ui

import (
	"context"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// statsMaxAge is how stale the overview's counts may be: counting reads
// every repository's metadata, too much for each page view.
const statsMaxAge = 15 * time.Second

// Overview is the dashboard's first page.
type Overview struct {
	Repositories int `json:"repositories"`
	Tags         int `json:"tags"`
	Manifests    int `json:"manifests"`
	// Blobs and StorageBytes count the distinct blobs of the visible
	// repositories; for a caller who sees every repository, every
	// stored blob.
	Blobs        int       `json:"blobs"`
	StorageBytes int64     `json:"storageBytes"`
	Started      time.Time `json:"started"`
	UptimeSec    int64     `json:"uptimeSeconds"`
	Healthy      bool      `json:"healthy"`
	Health       string    `json:"health"`
	CountedAt    time.Time `json:"countedAt"`
}

type repoCount struct {
	name            string
	tags, manifests int
	links           []digest.Digest
}

type snapshot struct {
	at    time.Time
	repos []repoCount
	total storage.Stats
}

// statsCache keeps one snapshot of the store's counts, refreshed on
// demand when older than statsMaxAge, by one caller at a time.
type statsCache struct {
	store *storage.Store
	mu    sync.Mutex
	snap  *snapshot
}

func (c *statsCache) get(ctx context.Context) (*snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != nil && time.Since(c.snap.at) < statsMaxAge {
		return c.snap, nil
	}
	s := &snapshot{at: time.Now()}
	err := c.store.ScanRepos(ctx, func(r *storage.GCRepo) error {
		rc := repoCount{name: r.Name, tags: len(r.Tags), manifests: len(r.Manifests), links: make([]digest.Digest, len(r.Links))}
		for i, l := range r.Links {
			rc.links[i] = l.Digest
		}
		s.repos = append(s.repos, rc)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.total, err = c.store.Stats(ctx); err != nil {
		return nil, err
	}
	c.snap = s
	return s, nil
}

// overview counts what c may see.
func (h *Handler) overview(ctx context.Context, c caller) (Overview, error) {
	s, err := h.stats.get(ctx)
	if err != nil {
		return Overview{}, err
	}
	o := Overview{Started: h.started, UptimeSec: int64(time.Since(h.started).Seconds()), CountedAt: s.at}
	blobs := map[digest.Digest]struct{}{}
	for _, r := range s.repos {
		if !c.mayList(r.name) {
			continue
		}
		o.Repositories++
		o.Tags += r.tags
		o.Manifests += r.manifests
		for _, d := range r.links {
			blobs[d] = struct{}{}
		}
	}
	if o.Repositories == len(s.repos) {
		o.Blobs, o.StorageBytes = s.total.Blobs, s.total.BlobBytes
	} else {
		ds := make([]digest.Digest, 0, len(blobs))
		for d := range blobs {
			ds = append(ds, d)
		}
		for _, size := range h.store.BlobSizes(ctx, ds) {
			o.Blobs++
			o.StorageBytes += size
		}
	}
	o.Healthy, o.Health = true, "ok"
	if err := h.store.Ready(ctx); err != nil {
		o.Healthy, o.Health = false, err.Error()
	}
	return o, nil
}
