package registry

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

// requestIDHeader carries the request id in and out. An incoming value is
// kept when it is short and printable, so a proxy's id links both logs.
const requestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an accepted incoming id; longer ones are replaced
// rather than trusted into every log line.
const maxRequestIDLen = 64

// statsTTL is how long storage totals are cached between scrapes, because
// storage.Store.Stats reads every blob record.
const statsTTL = 15 * time.Second

// observe wraps next with a request id, one access log line per request
// and, when enabled, Prometheus metrics. Handlers log through requestLog,
// which adds the request id; the logger is built only when a handler logs,
// and the request is not copied to carry it, as a manifest GET would
// otherwise spend a fifth of its allocations on a logger it never uses.
func (h *handler) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}

		if h.metrics != nil {
			h.metrics.inFlight.Inc()
			defer h.metrics.inFlight.Dec()
		}

		// The router may rewrite the path of the request it is given, so
		// keep the client's path for the log before handing it over.
		path := r.URL.Path
		rw := &responseWriter{ResponseWriter: w, base: &h.log, requestID: id}
		rw.idHeader[0] = id
		w.Header()[requestIDHeader] = rw.idHeader[:]
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &countingBody{ReadCloser: r.Body}
		}
		finished := false
		defer func() {
			status := rw.status
			switch {
			case !finished && !rw.wroteHeader:
				// The handler panicked before answering; net/http drops the
				// connection, which the client sees as a server failure.
				status = http.StatusInternalServerError
			case !rw.wroteHeader:
				// Headers only, as a successful HEAD: net/http sends 200.
				status = http.StatusOK
			}
			route := routeOf(r.Pattern)
			elapsed := time.Since(start)
			var received int64
			if b, ok := r.Body.(*countingBody); ok {
				received = b.n
			}
			if h.metrics != nil {
				h.metrics.observe(r.Method, route, status, rw.bytes, received, elapsed)
			}
			var ev *zerolog.Event
			switch {
			case status >= 500:
				ev = h.log.Warn()
			case h.access != nil:
				ev = h.access.Info()
			default:
				ev = h.log.Info()
			}
			if ev != nil { // nil: the level or WithAccessLog leaves it out
				// The id comes first, where a logger built With it puts it.
				ev = ev.Str("request_id", id).
					Str("method", r.Method).
					Str("route", route).
					Str("path", path).
					Int("status", status).
					Int64("bytes", rw.bytes)
				if received > 0 {
					ev = ev.Int64("bytes_received", received)
				}
				logIdentity(ev, rw.id, h.authz == nil).
					Float64("duration_ms", float64(elapsed.Microseconds())/1000).
					Str("remote", r.RemoteAddr).
					Str("user_agent", userAgent(r)).
					Msg("request")
			}
			if h.audit != nil {
				h.auditRequest(r, route, status, rw.Header(), rw.id)
			}
		}()
		next.ServeHTTP(rw, r)
		finished = true
	})
}

// routeOf turns a ServeMux pattern into the route label, the API route as
// the spec writes it: the pattern without its method (the method has its
// own label, and HEAD matches GET patterns) and without ServeMux's
// end-of-path marker {$}, or "unmatched". It never returns a raw path,
// so label values stay bounded.
func routeOf(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	return strings.TrimSuffix(pattern, "{$}")
}

// validRequestID reports whether an incoming id is short, non-empty,
// printable ASCII without spaces, and so safe to echo and log.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// newRequestID returns 128 random bits in hex. math/rand/v2's global source
// is per-thread ChaCha8 seeded from the OS: unpredictable enough for an id
// and free of the locking and syscalls of crypto/rand on the hot path.
func newRequestID() string {
	var b [16]byte
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return hex.EncodeToString(b[:])
}

// responseWriter records the status and body bytes of a response. It embeds
// only http.ResponseWriter so it never claims an interface the underlying
// writer lacks; other abilities are reached through Unwrap.
type responseWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	// id is the caller wrap authenticated: wrap's request is a copy
	// observe never sees, but the writer is the same.
	id *auth.Identity

	base      *zerolog.Logger // the handler's logger
	requestID string
	idHeader  [1]string       // the X-Request-Id value, allocated with the writer
	log       *zerolog.Logger // base with the request id, once asked for
}

// logger returns the handler's logger with the request id, built on the
// first call.
func (w *responseWriter) logger() *zerolog.Logger {
	if w.log == nil {
		l := w.base.With().Str("request_id", w.requestID).Logger()
		w.log = &l
	}
	return w.log
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader && (code < 100 || code > 199 || code == http.StatusSwitchingProtocols) {
		// 1xx other than 101 are informational; the final status follows.
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.implicitOK()
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps net/http's sendfile path for blob downloads: io.Copy onto
// this writer would otherwise fall back to a user-space buffer copy.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	w.implicitOK()
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(w.ResponseWriter, src)
	}
	w.bytes += n
	return n, err
}

// Flush sends buffered data to the client, as http.Flusher.
func (w *responseWriter) Flush() {
	w.implicitOK()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) implicitOK() {
	if !w.wroteHeader {
		w.status = http.StatusOK
		w.wroteHeader = true
	}
}

// metrics holds the registry's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
	received *prometheus.CounterVec
	inFlight prometheus.Gauge

	// byKey caches the children of the vectors above, so the hot path does
	// one map lookup instead of three label hashes and a strconv.
	byKey sync.Map // obsKey -> *observers
}

type obsKey struct {
	method, route string
	status        int
}

type observers struct {
	requests prometheus.Counter
	duration prometheus.Observer
	bytes    prometheus.Counter
	received prometheus.Counter
}

// newMetrics registers the registry's metrics with reg (the default
// registerer if nil). Collectors already registered by an earlier handler
// are reused. With a non-nil store it also exports storage totals.
func newMetrics(reg prometheus.Registerer, store *storage.Store) *metrics {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	labels := []string{"method", "route", "code"}
	m := &metrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, labels)),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nora_http_request_duration_seconds",
			Help: "Time from request start to handler return, by method, route pattern and status code.",
			// Up to 5 minutes: blob uploads and downloads are long requests.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, labels)),
		bytes: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_http_response_bytes_total",
			Help: "Response body bytes written, by method, route pattern and status code.",
		}, labels)),
		received: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_http_request_bytes_total",
			Help: "Request body bytes received, by method, route pattern and status code.",
		}, labels)),
		inFlight: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nora_http_requests_in_flight",
			Help: "Requests currently being served.",
		})),
	}
	if store != nil {
		register(reg, newStoreCollector(store))
	}
	return m
}

// register registers c, or returns the equal collector that already is.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: conflicting metric definitions
	}
	return c
}

func (m *metrics) observe(method, route string, status int, bytes, received int64, d time.Duration) {
	k := obsKey{method: methodLabel(method), route: route, status: status}
	v, ok := m.byKey.Load(k)
	if !ok {
		code := strconv.Itoa(status)
		v, _ = m.byKey.LoadOrStore(k, &observers{
			requests: m.requests.WithLabelValues(k.method, route, code),
			duration: m.duration.WithLabelValues(k.method, route, code),
			bytes:    m.bytes.WithLabelValues(k.method, route, code),
			received: m.received.WithLabelValues(k.method, route, code),
		})
	}
	o := v.(*observers)
	o.requests.Inc()
	o.duration.Observe(d.Seconds())
	if bytes > 0 {
		o.bytes.Add(float64(bytes))
	}
	if received > 0 {
		o.received.Add(float64(received))
	}
}

// methodLabel maps methods outside the standard set to "OTHER", so a client
// cannot create series by inventing methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// storeCollector exports storage totals, refreshed at most every statsTTL.
type storeCollector struct {
	store *storage.Store

	mu     sync.Mutex
	at     time.Time // zero until the first successful read
	stats  storage.Stats
	errors float64

	blobBytes, blobs, repos, uploads, errs *prometheus.Desc
}

func newStoreCollector(store *storage.Store) *storeCollector {
	return &storeCollector{
		store:     store,
		blobBytes: prometheus.NewDesc("nora_storage_blob_bytes", "Bytes of stored blobs, each counted once.", nil, nil),
		blobs:     prometheus.NewDesc("nora_storage_blobs", "Number of stored blobs.", nil, nil),
		repos:     prometheus.NewDesc("nora_storage_repositories", "Number of repositories.", nil, nil),
		uploads:   prometheus.NewDesc("nora_storage_uploads_in_progress", "Upload sessions started and not yet completed or cancelled.", nil, nil),
		errs:      prometheus.NewDesc("nora_storage_stats_errors_total", "Failed reads of storage totals.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.blobBytes
	ch <- c.blobs
	ch <- c.repos
	ch <- c.uploads
	ch <- c.errs
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > statsTTL {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := c.store.Stats(ctx)
		cancel()
		if err != nil {
			c.errors++
		} else {
			c.stats, c.at = st, time.Now()
		}
	}
	ch <- prometheus.MustNewConstMetric(c.errs, prometheus.CounterValue, c.errors)
	if c.at.IsZero() {
		return // no totals yet; absent is more honest than zero
	}
	ch <- prometheus.MustNewConstMetric(c.blobBytes, prometheus.GaugeValue, float64(c.stats.BlobBytes))
	ch <- prometheus.MustNewConstMetric(c.blobs, prometheus.GaugeValue, float64(c.stats.Blobs))
	ch <- prometheus.MustNewConstMetric(c.repos, prometheus.GaugeValue, float64(c.stats.Repositories))
	ch <- prometheus.MustNewConstMetric(c.uploads, prometheus.GaugeValue, float64(c.stats.Uploads))
}
