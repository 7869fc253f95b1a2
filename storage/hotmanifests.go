package storage

import (
	"context"
	"strings"
	"sync"
)

// The hot manifest cache keeps the manifests GetManifestShared read
// recently, so pulls of popular tags skip a read transaction, the record's
// decoding and a copy of the bytes. Every entry is stamped with the
// metadata generation it was read in, a counter the committer moves before
// and after each write transaction: an entry answers only while the
// generation is still the one it was read in and no write is running. Any
// commit, whatever it changed, retires every entry; a push, a tag move or
// a delete is never served stale once the call that made it has returned.
// The generation counts this process's writes: a metadata engine shared
// by several processes must move it on writes from any of them.
const (
	hotMaxEntries = 1024
	hotMaxBytes   = 4 << 20 // bytes of manifests held
	hotMaxSize    = 64 << 10
)

type hotKey struct{ repo, ref string }

type hotEntry struct {
	gen uint64
	m   Manifest
}

type hotManifests struct {
	mu      sync.RWMutex
	entries map[hotKey]hotEntry
	bytes   int
}

// GetManifestShared is GetManifest for callers that only read the
// manifest: the result may come from a cache of recent reads and its
// Content is shared with other callers, so it must not be modified. It
// reports the same errors as GetManifest.
func (s *Store) GetManifestShared(ctx context.Context, repo, reference string) (Manifest, error) {
	c := s.commit
	gen := c.gen.Load()
	if gen%2 == 1 { // a write is running: what it changes is not known yet
		return s.GetManifest(ctx, repo, reference)
	}
	k := hotKey{repo, reference}
	c.hot.mu.RLock()
	e, ok := c.hot.entries[k]
	c.hot.mu.RUnlock()
	if ok && e.gen == gen {
		return e.m, nil
	}
	m, err := s.GetManifest(ctx, repo, reference)
	if err != nil || len(m.Content) > hotMaxSize {
		return m, err
	}
	c.hot.put(hotKey{strings.Clone(repo), strings.Clone(reference)}, hotEntry{gen: gen, m: m}, c.gen.Load())
	return m, nil
}

// put stores e unless the generation moved since e was read (now is the
// current one): a write may have changed what e holds. An entry that slips
// in as a write starts keeps its old stamp, which no reader accepts once
// the generation has moved.
func (h *hotManifests) put(k hotKey, e hotEntry, now uint64) {
	if now != e.gen {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.entries[k]; ok {
		h.bytes -= len(old.m.Content)
	} else if len(h.entries) >= hotMaxEntries {
		h.entries = nil
	}
	if h.bytes+len(e.m.Content) > hotMaxBytes {
		h.entries = nil
	}
	if h.entries == nil {
		h.entries, h.bytes = map[hotKey]hotEntry{}, 0
	}
	h.entries[k] = e
	h.bytes += len(e.m.Content)
}
