package mirror

import (
	"context"
	"time"

	"github.com/nora-registry/nora/storage"
)

// SetEvictAfter sets how recently used an image must be to be safe from
// eviction in Mirrors made after it, and returns the function that restores it.
func SetEvictAfter(d time.Duration) (restore func()) {
	old := evictAfter
	evictAfter = d
	return func() { evictAfter = old }
}

// Settle waits until no blob fetch runs: a client has its blob once
// verified, a little before it is committed to the cache.
func (m *Mirror) Settle() {
	for {
		m.fetches.mu.Lock()
		n := len(m.fetches.m)
		m.fetches.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// FetchManifestAfterMiss is Manifest for a client whose look in the cache
// found no ref, made before another client's fetch of ref ended.
func (m *Mirror) FetchManifestAfterMiss(ctx context.Context, rt Route, ref string) (storage.Manifest, error) {
	man, _, err := m.fetchManifest(ctx, rt, ref, storage.Manifest{}, storage.ErrManifestNotFound)
	return man, err
}
