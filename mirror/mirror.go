package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/storage"
)

// maxManifestSize matches what the registry accepts on push.
const maxManifestSize = 4 << 20

// manifestTypes is the Accept list sent upstream: every kind the registry
// can store, so the upstream never converts what it serves.
var manifestTypes = []string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

// Mirror serves the routes of a Config from its Store, fetching from the
// upstreams what the Store lacks. It is safe for concurrent use.
type Mirror struct {
	router  *Router
	store   *storage.Store
	log     zerolog.Logger
	clients map[*Upstream]*client
	flights group
	fetches fetches // of blobs
	// checked holds when each cached tag (local name and tag) last
	// matched upstream. The Store keeps the same times (TagChecked), read
	// when checked has no entry: a restart does not revalidate every tag.
	checked sync.Map
	// failed holds when revalidating each cached tag last failed.
	failed  sync.Map
	parse   ParseFunc // nil: see parseManifest
	metrics *metrics

	upstreams []*Upstream
	caches    map[*Upstream]*cache
	total     *cache // every upstream's content together
	// passMu serialises eviction passes.
	passMu  sync.Mutex
	pulling pulling
	// evictAfter is [mirror] keep_recent, else evictAfter when New ran.
	evictAfter time.Duration
	// bg is the context of background eviction passes, cancelled by
	// Close, which waits for them with bgWG.
	bg     context.Context
	stopBG context.CancelFunc
	bgMu   sync.Mutex
	bgWG   sync.WaitGroup
	closed bool
}

// New returns the Mirror of a validated Config over store, or nil when cfg
// has no upstreams. In the background, it measures what is cached from
// each upstream and evicts from those over their max_size, and from all
// of them when together they are over cfg's. Close stops that.
func New(cfg Config, store *storage.Store, log zerolog.Logger) (*Mirror, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, nil
	}
	m := &Mirror{router: NewRouter(cfg), store: store, log: log, clients: map[*Upstream]*client{},
		metrics: newMetrics(), evictAfter: cfg.keepRecent(evictAfter)}
	for u := range m.router.upstreams() {
		c, err := newClient(u, m.metrics)
		if err != nil {
			return nil, err
		}
		m.clients[u] = c
	}
	m.initCaches(context.Background(), cfg.MaxBytes())
	return m, nil
}

// Route routes a request's repository name and ?ns= value (see
// Router.Route). read says the request only reads: only reads may go to
// the default upstream, so that pushes can create local repositories.
func (m *Mirror) Route(ctx context.Context, name, ns string, read bool) (Route, bool) {
	var isLocal func(string) bool
	if read {
		isLocal = func(name string) bool {
			_, _, err := m.store.Tags(ctx, name, "", 1)
			return !errors.Is(err, storage.ErrRepositoryNotFound)
		}
	}
	return m.router.Route(name, ns, isLocal)
}

// Manifest returns manifest ref of rt with its bytes. By digest it comes
// from the cache, else from upstream. By tag it comes from the cache while
// the tag was checked within the upstream's revalidation interval, else
// after a HEAD upstream (and a GET when the digest moved). stale reports a
// cached copy returned because upstream failed. A manifest upstream does
// not have is storage.ErrManifestNotFound; a cached tag the upstream
// answers MANIFEST_UNKNOWN or NAME_UNKNOWN for was deleted there, and is
// deleted from the cache too (its manifest stays until GC or eviction).
// An unreachable upstream with nothing cached is ErrUpstreamUnavailable.
func (m *Mirror) Manifest(ctx context.Context, rt Route, ref string) (man storage.Manifest, stale bool, err error) {
	cached, cerr := m.store.GetManifest(ctx, rt.Local, ref)
	if cerr != nil && !errors.Is(cerr, storage.ErrManifestNotFound) && !errors.Is(cerr, storage.ErrRepositoryNotFound) {
		return man, false, cerr
	}
	if cerr == nil && (isDigest(ref) || m.fresh(ctx, rt, ref)) {
		m.count(rt, resultHit)
		return cached, false, nil
	}
	return m.fetchManifest(ctx, rt, ref, cached, cerr)
}

// fetchManifest is Manifest once the cache's answer, cached or cerr, did
// not serve ref: one flight per reference asks upstream. The flight looks
// in the cache again first: a flight for ref that ended after that answer
// was read may have brought it in, and asking upstream again would be a
// second fetch of one manifest by clients that came together.
func (m *Mirror) fetchManifest(ctx context.Context, rt Route, ref string, cached storage.Manifest, cerr error) (man storage.Manifest, stale bool, err error) {
	key := rt.Local + ":" + ref
	if cerr == nil && m.failedRecently(key, rt.Upstream) {
		m.count(rt, resultStale)
		return cached, true, nil
	}
	var have digest.Digest
	timeout := rt.Upstream.fetchTimeout()
	if cerr == nil {
		have, timeout = cached.Digest, rt.Upstream.revalidateTimeout()
	}
	result, leader, err := m.flights.do("manifest "+key, func() (string, error) {
		if _, err := m.store.StatManifest(ctx, rt.Local, ref); err == nil && (isDigest(ref) || m.fresh(ctx, rt, ref)) {
			return resultHit, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		return m.refresh(fctx, rt, ref, have)
	})
	switch {
	case err == nil:
		m.failed.Delete(key)
		m.count(rt, joined(leader, result))
		man, err = m.store.GetManifest(ctx, rt.Local, ref)
		return man, false, err
	case cerr == nil && !goneUpstream(err):
		m.failed.Store(key, time.Now())
		m.count(rt, resultStale)
		m.log.Warn().Err(err).Str("upstream", rt.Upstream.Name).Str("repository", rt.Local).Str("reference", ref).
			Msg("upstream failed; serving the cached manifest")
		return cached, true, nil
	case errors.Is(err, errUpstreamNotFound):
		return man, false, fmt.Errorf("%w: %s:%s upstream", storage.ErrManifestNotFound, rt.Repo, ref)
	}
	return man, false, err
}

// failedRecently reports whether a request of key to u failed within u's
// stale_retry.
func (m *Mirror) failedRecently(key string, u *Upstream) bool {
	t, ok := m.failed.Load(key)
	return ok && time.Since(t.(time.Time)) < u.staleRetry()
}

func (m *Mirror) fresh(ctx context.Context, rt Route, tag string) bool {
	key := rt.Local + ":" + tag
	v, ok := m.checked.Load(key)
	t, _ := v.(time.Time)
	if !ok {
		if t, ok = m.store.TagChecked(ctx, rt.Local, tag); ok {
			m.checked.Store(key, t)
		}
	}
	return ok && time.Since(t) < rt.Upstream.RevalidateInterval()
}

// matched notes that tag of rt, naming d, matches upstream now, in memory
// and in the Store. Failing to store it costs only a revalidation later.
func (m *Mirror) matched(ctx context.Context, rt Route, tag string, d digest.Digest) {
	now := time.Now()
	m.checked.Store(rt.Local+":"+tag, now)
	if err := m.store.RecordTagCheck(ctx, rt.Local, tag, d, now); err != nil {
		m.log.Warn().Err(err).Str("repository", rt.Local).Str("tag", tag).Msg("recording a tag check failed")
	}
}

// refresh brings manifest ref of rt into the cache. have is the digest the
// cache holds for a tag, if any: a HEAD that announces it ends the check.
func (m *Mirror) refresh(ctx context.Context, rt Route, ref string, have digest.Digest) (result string, err error) {
	c := m.clients[rt.Upstream]
	if have != "" {
		resp, err := c.do(ctx, http.MethodHead, rt.Repo, "manifests", ref, manifestTypes)
		switch {
		case errors.Is(err, errUpstreamNotFound):
			// The GET's error code tells whether the tag is gone.
		case err != nil:
			return "", err
		default:
			resp.Body.Close()
			if digest.Digest(resp.Header.Get("Docker-Content-Digest")) == have {
				m.matched(ctx, rt, ref, have)
				return resultRevalidated, nil
			}
		}
	}
	resp, err := c.do(ctx, http.MethodGet, rt.Repo, "manifests", ref, manifestTypes)
	if err != nil {
		if have != "" && goneUpstream(err) {
			return "", m.untag(ctx, rt, ref, have, err)
		}
		return "", err
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, maxManifestSize)
	if err != nil {
		return "", err
	}
	want := digest.Digest(resp.Header.Get("Docker-Content-Digest"))
	if isDigest(ref) {
		want = digest.Digest(ref)
	}
	d, err := verifyManifest(body, want)
	if err != nil {
		m.metrics.errors.WithLabelValues(rt.Upstream.Name, "digest").Inc()
		return "", err
	}
	var tags []string
	if !isDigest(ref) {
		tags = []string{ref}
	}
	man, err := m.parseManifest(resp.Header.Get("Content-Type"), body)
	if err != nil {
		return "", fmt.Errorf("%w: upstream manifest %s:%s: %v", ErrUpstreamUnavailable, rt.Repo, ref, err)
	}
	man.Digest, man.Content = d, body
	if err := m.store.PutCachedManifest(ctx, rt.Local, man, tags); err != nil {
		return "", err
	}
	m.stored(rt.Upstream, int64(len(body)))
	if !isDigest(ref) {
		m.matched(ctx, rt, ref, d)
	}
	return resultMiss, nil
}

// untag deletes cached tag of rt, which named have, after the upstream
// answered gone, an error that untag returns unless the deletion failed.
func (m *Mirror) untag(ctx context.Context, rt Route, tag string, have digest.Digest, gone error) error {
	m.checked.Delete(rt.Local + ":" + tag)
	deleted, err := m.store.DeleteTagOf(ctx, rt.Local, tag, have)
	if err != nil {
		return err
	}
	m.log.Info().Str("upstream", rt.Upstream.Name).Str("repository", rt.Local).Str("tag", tag).Bool("deleted", deleted).
		Msg("tag deleted upstream; removed from the cache")
	return gone
}

// verifyManifest returns the digest of body, which must be want when want
// is set (in want's algorithm).
func verifyManifest(body []byte, want digest.Digest) (digest.Digest, error) {
	if want == "" {
		return digest.FromBytes(body), nil
	}
	if err := want.Validate(); err != nil {
		return "", fmt.Errorf("%w: upstream announced digest %q: %v", ErrUpstreamUnavailable, want, err)
	}
	if got := want.Algorithm().FromBytes(body); got != want {
		return "", fmt.Errorf("%w: manifest bytes hash to %s, not %s", ErrUpstreamUnavailable, got, want)
	}
	return want, nil
}

// ParseFunc validates manifest bytes sent with contentType and returns what
// the Store must know of them: media type and references. The registry
// owns manifest parsing and hands its parser to the mirror.
type ParseFunc func(contentType string, body []byte) (storage.Manifest, error)

// UseParser makes the mirror parse manifests with parse, so that cached
// manifests carry their references and GC keeps what they reference.
// Call it before the Mirror serves requests.
func (m *Mirror) UseParser(parse ParseFunc) { m.parse = parse }

// parseManifest parses with the registry's parser, or, without one, keeps
// only the manifest's media type: its own mediaType field, else the
// upstream's Content-Type.
func (m *Mirror) parseManifest(contentType string, body []byte) (storage.Manifest, error) {
	if m.parse != nil {
		return m.parse(contentType, body)
	}
	var v struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(body, &v) == nil && v.MediaType != "" {
		return storage.Manifest{MediaType: v.MediaType}, nil
	}
	mt, _, _ := strings.Cut(contentType, ";")
	return storage.Manifest{MediaType: strings.TrimSpace(mt)}, nil
}

func isDigest(ref string) bool { return strings.ContainsRune(ref, ':') }
