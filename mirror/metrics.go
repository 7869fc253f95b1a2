package mirror

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/prometheus/client_golang/prometheus"
)

// Results of a request for mirrored content, the result label of
// nora_mirror_requests_total.
const (
	resultHit         = "hit"         // served from the cache, upstream not asked
	resultMiss        = "miss"        // fetched from upstream
	resultStale       = "stale"       // served from the cache because upstream failed
	resultRevalidated = "revalidated" // upstream confirmed the cached tag
	resultCoalesced   = "coalesced"   // joined a fetch of the same content already running
)

// metrics are the mirror's Prometheus series, labelled by upstream name
// only: repositories and tags would make the series unbounded.
type metrics struct {
	requests *prometheus.CounterVec // upstream, result
	upstream *prometheus.CounterVec // upstream, class
	errors   *prometheus.CounterVec // upstream, class
	bytes    *prometheus.CounterVec // upstream
	// cacheBytes and evictions: see evict.go.
	cacheBytes *prometheus.GaugeVec   // upstream
	evictions  *prometheus.CounterVec // upstream
	// served and fetched total requests across upstreams, for Ratio.
	served, fetched atomic.Uint64
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_mirror_requests_total",
			Help: "Requests for mirrored manifests and blobs, by upstream and result: hit, miss (fetched upstream), coalesced (joined a fetch of the same content already running), stale or revalidated.",
		}, []string{"upstream", "result"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_mirror_upstream_requests_total",
			Help: "Requests sent upstream, by upstream and outcome: 2xx, 404, or the class of a failure (network, timeout, 429, 4xx, 5xx).",
		}, []string{"upstream", "class"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_mirror_upstream_errors_total",
			Help: "Failed upstream requests, by upstream and class: network, timeout, 429, 4xx, 5xx or digest (bytes that failed verification).",
		}, []string{"upstream", "class"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_mirror_upstream_bytes_total",
			Help: "Bytes of manifests and blobs read from upstream.",
		}, []string{"upstream"}),
		cacheBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nora_mirror_cache_bytes",
			Help: "Bytes cached from the upstream: its manifests and the distinct blobs its repositories link. Measured at start and at each eviction pass, plus what was fetched since.",
		}, []string{"upstream"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_mirror_evictions_total",
			Help: "Cached images evicted because the upstream's cache was over its max_size, or all upstreams' over [mirror] max_size.",
		}, []string{"upstream"}),
	}
}

// Register registers the mirror's metrics with reg.
func (m *Mirror) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.metrics.requests, m.metrics.upstream, m.metrics.errors, m.metrics.bytes, m.metrics.cacheBytes, m.metrics.evictions} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// CountHit counts a request for rt served from the cache by the registry
// itself (a warm blob).
func (m *Mirror) CountHit(rt Route) { m.count(rt, resultHit) }

func (m *Mirror) count(rt Route, result string) {
	m.metrics.requests.WithLabelValues(rt.Upstream.Name, result).Inc()
	switch result {
	case resultHit, resultStale, resultRevalidated:
		m.metrics.served.Add(1)
	default: // a miss, or one that joined a fetch upstream
		m.metrics.fetched.Add(1)
	}
}

// Hits returns how many requests for mirrored content, across upstreams
// and since start, were served from the cache (hits: including stale and
// revalidated tags) and how many needed a fetch upstream (misses:
// including those that joined one already running).
func (m *Mirror) Hits() (hits, misses uint64) {
	return m.metrics.served.Load(), m.metrics.fetched.Load()
}

// countRequest counts an upstream request of u that ended with err, and
// a failure by its class. A 404 is an answer, not a failure.
func (m *metrics) countRequest(u *Upstream, err error) {
	class := "2xx"
	if err != nil {
		if class = errorClass(err); class == "" {
			class = "404"
		} else {
			m.errors.WithLabelValues(u.Name, class).Inc()
		}
	}
	m.upstream.WithLabelValues(u.Name, class).Inc()
}

func errorClass(err error) string {
	var te *transport.Error
	var ne net.Error
	switch {
	case errors.As(err, &te):
		switch s := te.StatusCode; {
		case s == http.StatusNotFound:
			return ""
		case s == http.StatusTooManyRequests:
			return "429"
		case s >= 500:
			return "5xx"
		case s >= 400:
			return "4xx"
		}
		return strconv.Itoa(te.StatusCode)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "network"
}

// countingBody counts the bytes read through it.
type countingBody struct {
	io.ReadCloser
	c prometheus.Counter
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.Add(float64(n))
	return n, err
}

// joined returns the result to count for a request that got result from
// a fetch it led, or else joined.
func joined(leader bool, result string) string {
	if leader {
		return result
	}
	return resultCoalesced
}
