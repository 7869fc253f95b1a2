package ui

import (
	"context"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// statsMaxAge is how old the overview's counts may grow before a recount:
// counting reads every repository's metadata, too much for each page view.
const statsMaxAge = 15 * time.Second

// Overview is the dashboard's first page.
type Overview struct {
	Repositories int `json:"repositories"`
	Tags         int `json:"tags"`
	Manifests    int `json:"manifests"`
	// Blobs and StorageBytes count the distinct blobs of the visible
	// repositories; for a caller who sees every repository, every
	// stored blob.
	Blobs        int   `json:"blobs"`
	StorageBytes int64 `json:"storageBytes"`
	// DedupBytes is what storing each repository's blobs apart would
	// take beyond StorageBytes: the saving of storing each blob once.
	DedupBytes int64     `json:"dedupBytes"`
	Started    time.Time `json:"started"`
	UptimeSec  int64     `json:"uptimeSeconds"`
	Healthy    bool      `json:"healthy"`
	Health     string    `json:"health"`
	CountedAt  time.Time `json:"countedAt"`
	// Mirror and Replication are shown to callers who see every
	// repository, when the mirror or replication is on.
	Mirror      *MirrorStats   `json:"mirror,omitempty"`
	Replication []RemoteStatus `json:"replication,omitempty"`
	// Maintenance is shown to admins, and to all with auth off.
	Maintenance *MaintenanceRuns `json:"maintenance,omitempty"`
}

// MaintenanceRuns are the last GC and retention passes and the next
// scheduled run.
type MaintenanceRuns struct {
	LastGC        *Pass     `json:"lastGC,omitempty"`
	LastRetention *Pass     `json:"lastRetention,omitempty"`
	Next          time.Time `json:"next,omitzero"`
	// Reclaimable is nil until first measured.
	Reclaimable *Reclaimable `json:"reclaimable,omitempty"`
}

// Reclaimable is what a GC pass with the server's settings could free,
// as last measured: a plan that deletes nothing.
type Reclaimable struct {
	// Bytes is what a pass at MeasuredAt would have freed.
	Bytes int64 `json:"bytes"`
	// WaitingBytes is what only the grace period keeps; if nothing
	// changes, a pass from CollectableBy on frees it too.
	WaitingBytes  int64     `json:"waitingBytes"`
	CollectableBy time.Time `json:"collectableBy,omitzero"`
	MeasuredAt    time.Time `json:"measuredAt"`
}

// maintenanceRuns fills o.Maintenance for c, if c may see it.
func (h *Handler) maintenanceRuns(o *Overview, c caller) {
	if h.maint == nil || (h.auth != nil && !c.isAdmin()) {
		return
	}
	m := &MaintenanceRuns{Next: h.maint.NextRun(), Reclaimable: h.maint.Reclaimable()}
	for _, p := range h.maint.Passes() {
		switch {
		case p.Kind == "gc" && m.LastGC == nil:
			m.LastGC = &p
		case p.Kind == "retention" && m.LastRetention == nil:
			m.LastRetention = &p
		}
	}
	o.Maintenance = m
}

type repoCount struct {
	name            string
	tags, manifests int
	links           []digest.Digest
	// blobBytes is its linked blobs' bytes, size that and its
	// manifests'; pushed its latest push, pulled its latest pull (zero
	// if never).
	blobBytes, size int64
	pushed, pulled  time.Time
}

type snapshot struct {
	at    time.Time
	repos []repoCount
	total storage.Stats
}

// statsCache keeps one snapshot of the store's counts. The first caller
// counts; later callers get the snapshot at once, and one that finds it
// older than statsMaxAge starts a recount in the background, so no page
// waits for a count of every repository but the very first.
type statsCache struct {
	store *storage.Store
	mu    sync.Mutex
	snap  *snapshot
	// counting is set while a background recount runs.
	counting bool
}

func (c *statsCache) get(ctx context.Context) (*snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap == nil {
		s, err := c.count(ctx)
		if err != nil {
			return nil, err
		}
		c.snap = s
	}
	if time.Since(c.snap.at) >= statsMaxAge && !c.counting {
		c.counting = true
		go c.recount()
	}
	return c.snap, nil
}

func (c *statsCache) recount() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := c.count(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counting = false
	if err == nil {
		c.snap = s
	}
}

// count reads every repository's metadata and the blob totals.
func (c *statsCache) count(ctx context.Context) (*snapshot, error) {
	s := &snapshot{at: time.Now()}
	seen := map[digest.Digest]bool{}
	var all []digest.Digest
	err := c.store.ScanRepos(ctx, func(r *storage.GCRepo) error {
		rc := repoCount{name: r.Name, tags: len(r.Tags), manifests: len(r.Manifests), links: make([]digest.Digest, len(r.Links))}
		for i, l := range r.Links {
			rc.links[i] = l.Digest
			if !seen[l.Digest] {
				seen[l.Digest] = true
				all = append(all, l.Digest)
			}
		}
		for _, m := range r.Manifests {
			rc.size += m.Size
			rc.pushed = later(rc.pushed, m.Pushed)
			rc.pulled = later(rc.pulled, m.Used)
		}
		for _, t := range r.Tags {
			rc.pushed = later(rc.pushed, t.Pushed)
		}
		s.repos = append(s.repos, rc)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sizes := c.store.BlobSizes(ctx, all)
	for i := range s.repos {
		for _, d := range s.repos[i].links {
			s.repos[i].blobBytes += sizes[d]
		}
		s.repos[i].size += s.repos[i].blobBytes
	}
	if s.total, err = c.store.Stats(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// overview counts what c may see.
func (h *Handler) overview(ctx context.Context, c caller) (Overview, error) {
	s, err := h.stats.get(ctx)
	if err != nil {
		return Overview{}, err
	}
	o := Overview{Started: h.started, UptimeSec: int64(time.Since(h.started).Seconds()), CountedAt: s.at}
	var visible []*repoCount
	for i := range s.repos {
		r := &s.repos[i]
		if c.mayList(r.name) {
			visible = append(visible, r)
			o.Tags += r.tags
			o.Manifests += r.manifests
		}
	}
	o.Repositories = len(visible)
	if len(visible) == len(s.repos) {
		o.Blobs, o.StorageBytes = s.total.Blobs, s.total.BlobBytes
		h.remotes(&o)
	} else {
		// Only the blobs of what the caller may see: the store's totals
		// would tell of repositories hidden from them.
		seen := map[digest.Digest]bool{}
		var ds []digest.Digest
		for _, r := range visible {
			for _, d := range r.links {
				if !seen[d] {
					seen[d] = true
					ds = append(ds, d)
				}
			}
		}
		for _, size := range h.store.BlobSizes(ctx, ds) {
			o.Blobs++
			o.StorageBytes += size
		}
	}
	for _, r := range visible {
		o.DedupBytes += r.blobBytes
	}
	o.DedupBytes = max(0, o.DedupBytes-o.StorageBytes)
	h.maintenanceRuns(&o, c)
	o.Healthy, o.Health = true, "ok"
	if err := h.store.Ready(ctx); err != nil {
		o.Healthy, o.Health = false, err.Error()
	}
	return o, nil
}
