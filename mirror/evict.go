package mirror

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// evictAfter protects from eviction an image used more recently than
// this: a client pulls a manifest, then its blobs one after another, and
// each GET or HEAD of one renews the whole image. A variable so that
// tests can shorten it before New.
var evictAfter = 2 * time.Minute

// evictRetry is how long after a pass that left the cache over its cap
// (every image in it in use) fetches start no other: a pull of many
// layers would otherwise rescan the cache at each one.
const evictRetry = 10 * time.Second

// cache is the size accounting of one upstream's cached content.
type cache struct {
	max int64 // bytes; 0: no cap
	// size is what the last measure found, plus what was fetched since.
	size atomic.Int64
	// running is set while a pass started by kick is queued or runs;
	// pass serialises passes.
	running atomic.Bool
	pass    sync.Mutex
	// retryAt is when fetches may start a pass again, in Unix
	// nanoseconds.
	retryAt atomic.Int64
}

// pulling counts, per local repository name, the requests reading or
// fetching its blobs right now: eviction skips those repositories.
type pulling struct {
	mu sync.Mutex
	n  map[string]int
}

// Pulling notes that a client is reading a blob of rt until the returned
// function is called; eviction leaves rt's repository alone meanwhile.
func (m *Mirror) Pulling(rt Route) (done func()) {
	p := &m.pulling
	p.mu.Lock()
	p.n[rt.Local]++
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		if p.n[rt.Local]--; p.n[rt.Local] <= 0 {
			delete(p.n, rt.Local)
		}
		p.mu.Unlock()
	}
}

func (m *Mirror) isPulling(repo string) bool {
	m.pulling.mu.Lock()
	defer m.pulling.mu.Unlock()
	return m.pulling.n[repo] > 0
}

// initCaches sets up each upstream's size accounting and measures it in
// the background, where a cache already over its cap is trimmed too: a
// scan of a large cache must not delay the server's start. Until it ends
// the size counts only what is fetched; the pass adds what it found.
func (m *Mirror) initCaches(ctx context.Context) {
	m.caches = map[*Upstream]*cache{}
	m.pulling.n = map[string]int{}
	m.bg, m.stopBG = context.WithCancel(context.WithoutCancel(ctx))
	for u := range m.router.upstreams() {
		c := &cache{max: u.MaxBytes()}
		m.caches[u] = c
		c.running.Store(true)
		m.startPass(u, c)
	}
}

// stored accounts n bytes just cached from u, and starts an eviction pass
// in the background when u's cache is over its cap.
func (m *Mirror) stored(u *Upstream, n int64) {
	c := m.caches[u]
	size := c.size.Add(n)
	m.metrics.cacheBytes.WithLabelValues(u.Name).Set(float64(size))
	if c.max == 0 || size <= c.max || time.Now().UnixNano() < c.retryAt.Load() || !c.running.CompareAndSwap(false, true) {
		return
	}
	m.startPass(u, c)
}

// startPass runs an eviction pass over u's cache in the background; the
// caller has set c.running, which the pass clears when it ends.
func (m *Mirror) startPass(u *Upstream, c *cache) {
	m.bgMu.Lock()
	defer m.bgMu.Unlock()
	if m.closed {
		c.running.Store(false)
		return
	}
	m.bgWG.Add(1)
	go func() {
		defer m.bgWG.Done()
		defer c.running.Store(false)
		if err := m.evict(m.bg, u, c); err != nil && m.bg.Err() == nil {
			m.log.Error().Err(err).Str("upstream", u.Name).Msg("cache eviction failed")
		}
		if c.max > 0 && c.size.Load() > c.max {
			c.retryAt.Store(time.Now().Add(evictRetry).UnixNano())
		}
	}()
}

// Close stops eviction passes and waits for the one running, if any.
func (m *Mirror) Close() {
	m.bgMu.Lock()
	m.closed = true
	m.bgMu.Unlock()
	m.stopBG()
	m.bgWG.Wait()
}

// Evict measures every upstream's cache again and runs an eviction pass
// over those with a max_size, now. The server calls it after each GC
// pass, which may have deleted cached content; passes also run by
// themselves, after a fetch takes a cache past its cap.
func (m *Mirror) Evict(ctx context.Context) error {
	var errs []error
	for u, c := range m.caches {
		errs = append(errs, m.evict(ctx, u, c))
	}
	return errors.Join(errs...)
}

// evict measures u's cache and, if it has a cap, deletes the least
// recently used images until it is under it, then the blobs nothing links
// any more. An image used within m.evictAfter, or in a repository a
// client is reading a blob of, is kept even if the cache stays over its
// cap. Deletion goes through GC's own primitives, which re-check each
// manifest and link in their write transactions, with the pass's start
// minus m.evictAfter as their cutoff: what a client used since the plan
// stays.
func (m *Mirror) evict(ctx context.Context, u *Upstream, c *cache) error {
	c.pass.Lock()
	defer c.pass.Unlock()
	before := c.size.Load()
	cutoff := time.Now().Add(-m.evictAfter)
	sc, err := m.scanCache(ctx, u)
	if err != nil {
		return err
	}
	after := sc.size
	defer func() {
		size := c.size.Add(after - before)
		m.metrics.cacheBytes.WithLabelValues(u.Name).Set(float64(size))
	}()
	if c.max == 0 {
		return nil
	}
	victims := sc.victims(c.max, cutoff, m.isPulling)
	if len(victims) == 0 {
		return nil
	}
	var unlinked []digest.Digest
	evicted := 0
	for _, img := range victims {
		gone, links, err := m.evictImage(ctx, img, cutoff)
		if err != nil {
			return err
		}
		if gone {
			evicted++
		}
		unlinked = append(unlinked, links...)
	}
	m.metrics.evictions.WithLabelValues(u.Name).Add(float64(evicted))
	if _, err := m.store.CollectBlobs(ctx, unlinked, cutoff); err != nil {
		return err
	}
	sc, err = m.scanCache(ctx, u)
	if err != nil {
		return err
	}
	after = sc.size
	m.log.Info().Str("upstream", u.Name).Int("images", evicted).Int64("bytes", after).Int64("max", c.max).Msg("cache eviction")
	return nil
}

// evictImage deletes img's tags, then its manifests and blob links where
// they still qualify, and returns whether its top manifest went and the
// links deleted.
func (m *Mirror) evictImage(ctx context.Context, img *image, cutoff time.Time) (bool, []digest.Digest, error) {
	for _, t := range img.tags {
		if _, err := m.store.DeleteTagIf(ctx, img.repo, t.Name, t.Digest, t.Pushed); err != nil {
			return false, nil, err
		}
	}
	gone, links, err := m.store.CollectRepo(ctx, storage.GCRepoPlan{
		Repo: img.repo, Manifests: img.digests, Links: img.blobs, Cutoff: cutoff,
	})
	return slices.Contains(gone, img.digests[0]), links, err
}
