package mirror

import (
	"context"
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

// evictRetry is how long after a pass that left a cache over its cap
// (every image in it in use) fetches start no other pass for it: a pull
// of many layers would otherwise rescan the cache at each one.
const evictRetry = 10 * time.Second

// cache is the size accounting of one upstream's cached content, or of
// every upstream's together.
type cache struct {
	max int64 // bytes; 0: no cap
	// size is what the last measure found, plus what was fetched since.
	size atomic.Int64
	// running is set while a pass started for this cache is queued or
	// runs.
	running atomic.Bool
	// retryAt is when fetches may start a pass again, in Unix
	// nanoseconds.
	retryAt atomic.Int64
}

// due reports whether size is over c's cap and a pass may start for c,
// and if so marks it running.
func (c *cache) due(size int64) bool {
	return c.max > 0 && size > c.max && time.Now().UnixNano() >= c.retryAt.Load() && c.running.CompareAndSwap(false, true)
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

// initCaches sets up the size accounting of each upstream and of all
// together, capped at max, and measures them in the background, where a
// cache already over its cap is trimmed too: a scan of a large cache must
// not delay the server's start. Until it ends the sizes count only what
// is fetched; the pass adds what it found.
func (m *Mirror) initCaches(ctx context.Context, max int64) {
	m.caches = map[*Upstream]*cache{}
	m.pulling.n = map[string]int{}
	m.bg, m.stopBG = context.WithCancel(context.WithoutCancel(ctx))
	for u := range m.router.upstreams() {
		m.caches[u] = &cache{max: u.MaxBytes()}
		m.upstreams = append(m.upstreams, u)
	}
	m.total = &cache{max: max}
	m.total.running.Store(true)
	m.startPass(m.upstreams, m.total)
}

// stored accounts n bytes just cached from u, and starts an eviction pass
// in the background when u's cache, or all together, is over its cap.
func (m *Mirror) stored(u *Upstream, n int64) {
	c := m.caches[u]
	size := c.size.Add(n)
	m.metrics.cacheBytes.WithLabelValues(u.Name).Set(float64(size))
	switch {
	case m.total.due(m.total.size.Add(n)):
		m.startPass(m.upstreams, m.total)
	case c.due(size):
		m.startPass([]*Upstream{u}, c)
	}
}

// startPass runs an eviction pass over the caches of ups in the
// background, for c: the caller has set c.running, which the pass clears
// when it ends.
func (m *Mirror) startPass(ups []*Upstream, c *cache) {
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
		if err := m.evict(m.bg, ups); err != nil && m.bg.Err() == nil {
			m.log.Error().Err(err).Msg("cache eviction failed")
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
// over them, now. The server calls it after each GC pass, which may have
// deleted cached content; passes also run by themselves, after a fetch
// takes a cache past its cap.
func (m *Mirror) Evict(ctx context.Context) error { return m.evict(ctx, m.upstreams) }

// evict measures the caches of ups and deletes the least recently used
// images while one of them, or all together when ups are all the
// upstreams, is over its cap; then the blobs nothing links any more. An
// image used within m.evictAfter, or in a repository a client is reading
// a blob of, is kept even if a cache stays over its cap. Deletion goes
// through GC's own primitives, which re-check each manifest and link in
// their write transactions, with the pass's start minus m.evictAfter as
// their cutoff: what a client used since the plan stays. Passes run one
// at a time.
func (m *Mirror) evict(ctx context.Context, ups []*Upstream) error {
	m.passMu.Lock()
	defer m.passMu.Unlock()
	all := len(ups) == len(m.upstreams)
	before := make([]int64, len(ups))
	for i, u := range ups {
		before[i] = m.caches[u].size.Load()
	}
	totalBefore := m.total.size.Load()
	cutoff := time.Now().Add(-m.evictAfter)
	sc, err := m.scanCache(ctx, ups, all)
	if err != nil {
		return err
	}
	defer func() { m.measured(ups, before, totalBefore, sc) }()
	victims := sc.victims(cutoff, m.isPulling)
	if len(victims) == 0 {
		return nil
	}
	var unlinked []digest.Digest
	evicted := map[*Upstream]int{}
	for _, img := range victims {
		gone, links, err := m.evictImage(ctx, img, cutoff)
		if err != nil {
			return err
		}
		if gone {
			evicted[img.up]++
		}
		unlinked = append(unlinked, links...)
	}
	for u, n := range evicted {
		m.metrics.evictions.WithLabelValues(u.Name).Add(float64(n))
	}
	if _, err := m.store.CollectBlobs(ctx, unlinked, cutoff); err != nil {
		return err
	}
	if sc, err = m.scanCache(ctx, ups, all); err != nil {
		return err
	}
	for u, n := range evicted {
		t := sc.per[u]
		m.log.Info().Str("upstream", u.Name).Int("images", n).Int64("bytes", t.size).Int64("max", t.max).Msg("cache eviction")
	}
	if all {
		m.log.Info().Int64("bytes", sc.total.size).Int64("max", sc.total.max).Msg("cache eviction: all upstreams")
	}
	return nil
}

// measured sets the sizes of the caches of ups, and of all together when
// sc has their total, to what sc found plus what was fetched since the
// pass read them as before and totalBefore.
func (m *Mirror) measured(ups []*Upstream, before []int64, totalBefore int64, sc *cacheScan) {
	var delta int64
	for i, u := range ups {
		d := sc.per[u].size - before[i]
		size := m.caches[u].size.Add(d)
		m.metrics.cacheBytes.WithLabelValues(u.Name).Set(float64(size))
		delta += d
	}
	if sc.total != nil {
		delta = sc.total.size - totalBefore
	}
	m.total.size.Add(delta)
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
