package registry

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/storage"
)

// observed returns h.observe around a ServeMux with two routes, logging
// JSON to buf and registering metrics with reg.
func observed(t *testing.T, buf *bytes.Buffer, reg prometheus.Registerer) http.Handler {
	t.Helper()
	h := &handler{log: zerolog.New(buf)}
	if reg != nil {
		h.metrics = newMetrics(reg, nil)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/{name}/manifests/{reference}", func(w http.ResponseWriter, r *http.Request) {
		requestLog(w, r).Info().Msg("inner")
		io.WriteString(w, "manifest")
	})
	mux.HandleFunc("PUT /v2/{name}/manifests/{reference}", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	})
	return h.observe(mux)
}

// logLines decodes every JSON line in buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestObserveRequestID(t *testing.T) {
	tests := []struct {
		name, in string
		keep     bool
	}{
		{"none", "", false},
		{"kept", "abc-123_XYZ.9", true},
		{"too long", strings.Repeat("a", maxRequestIDLen+1), false},
		{"space", "abc def", false},
		{"control", "abc\x01", false},
		{"non-ascii", "abcé", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			srv := observed(t, &buf, nil)
			req := httptest.NewRequest("GET", "/v2/app/manifests/latest", nil)
			if tt.in != "" {
				req.Header.Set("X-Request-Id", tt.in)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)

			got := rec.Header().Get("X-Request-Id")
			if tt.keep && got != tt.in {
				t.Errorf("X-Request-Id = %q, want %q", got, tt.in)
			}
			if !tt.keep && !generatedID.MatchString(got) {
				t.Errorf("X-Request-Id = %q, want 32 hex digits", got)
			}
			lines := logLines(t, &buf)
			if len(lines) != 2 {
				t.Fatalf("got %d log lines, want 2 (inner, access): %s", len(lines), buf.String())
			}
			for _, l := range lines {
				if l["request_id"] != got {
					t.Errorf("log %q request_id = %v, want %q", l["message"], l["request_id"], got)
				}
			}
		})
	}

	// Generated ids differ between requests.
	srv := observed(t, new(bytes.Buffer), nil)
	seen := map[string]bool{}
	for range 100 {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		id := rec.Header().Get("X-Request-Id")
		if seen[id] {
			t.Fatalf("request id %q repeated", id)
		}
		seen[id] = true
	}
}

func TestObserveAccessLog(t *testing.T) {
	var buf bytes.Buffer
	srv := observed(t, &buf, nil)
	req := httptest.NewRequest("GET", "/v2/app/manifests/v1?token=hunter2", nil)
	req.Header.Set("Authorization", "Bearer s3cr3t")
	req.Header.Set("User-Agent", "containerd/2.1.4")
	req.RemoteAddr = "192.0.2.7:4321"
	srv.ServeHTTP(httptest.NewRecorder(), req)

	lines := logLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2: %s", len(lines), buf.String())
	}
	access := lines[1]
	want := map[string]any{
		"message": "request",
		"level":   "info",
		"method":  "GET",
		"route":   "/v2/{name}/manifests/{reference}",
		"path":    "/v2/app/manifests/v1",
		"status":  float64(200), // implicit: the handler never calls WriteHeader
		"bytes":   float64(len("manifest")),
		"remote":  "192.0.2.7:4321",
		// The registry is open: every caller is anonymous.
		"identity_kind": "anonymous",
		"user_agent":    "containerd/2.1.4",
	}
	for k, v := range want {
		if access[k] != v {
			t.Errorf("access log %s = %v, want %v", k, access[k], v)
		}
	}
	if d, ok := access["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("access log duration_ms = %v, want a non-negative number", access["duration_ms"])
	}
	for _, secret := range []string{"s3cr3t", "hunter2", "Authorization", "token="} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("log contains %q: %s", secret, buf.String())
		}
	}

	buf.Reset()
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nowhere/at/all", nil))
	lines = logLines(t, &buf)
	if len(lines) != 1 || lines[0]["route"] != "unmatched" || lines[0]["status"] != float64(404) {
		t.Errorf("unmatched request logged %v, want route unmatched, status 404", lines)
	}
}

// TestObserveAccessLogOff: with the access lines sent to a logger that
// drops them, a success leaves no line while a 5xx answer is still a
// warning on the registry's logger.
func TestObserveAccessLogOff(t *testing.T) {
	var log, access bytes.Buffer
	h := &handler{log: zerolog.New(&log)}
	WithAccessLog(zerolog.New(&access).Level(zerolog.Disabled))(h)
	srv := h.observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/", nil))
	if log.Len() != 0 || access.Len() != 0 {
		t.Errorf("a 200 with the access log off logged %q and %q, want nothing", log.String(), access.String())
	}
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/fail", nil))
	lines := logLines(t, &log)
	if len(lines) != 1 || lines[0]["level"] != "warn" || lines[0]["status"] != float64(503) {
		t.Errorf("a 503 with the access log off logged %v, want one warning with status 503", lines)
	}

	// On, the access logger takes the lines of successes.
	log.Reset()
	WithAccessLog(zerolog.New(&access))(h)
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/", nil))
	if lines := logLines(t, &access); log.Len() != 0 || len(lines) != 1 || lines[0]["status"] != float64(200) {
		t.Errorf("a 200 logged %q on the registry's logger and %v on the access logger, want one line on the access logger", log.String(), lines)
	}
}

// TestObserveImplicitStatus: a handler that answers with headers only, as
// a successful HEAD does, is logged and counted with the 200 that net/http
// sends for it.
func TestObserveImplicitStatus(t *testing.T) {
	var buf bytes.Buffer
	reg := prometheus.NewRegistry()
	h := &handler{log: zerolog.New(&buf), metrics: newMetrics(reg, nil)}
	srv := h.observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "42")
	}))
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("HEAD", "/v2/app/blobs/sha256:0", nil))

	lines := logLines(t, &buf)
	if len(lines) != 1 || lines[0]["status"] != float64(200) {
		t.Errorf("access log = %v, want status 200", lines)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "nora_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if code := m.GetLabel()[0].GetValue(); code != "200" {
				t.Errorf("nora_http_requests_total code = %q, want 200", code)
			}
		}
	}
}

func TestObserveMetricLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := observed(t, new(bytes.Buffer), reg)
	calls := []struct{ method, path string }{
		{"GET", "/v2/secret-app/manifests/latest"},
		{"GET", "/v2/secret-app/manifests/latest"},
		{"HEAD", "/v2/secret-team/manifests/v1"},
		{"PUT", "/v2/secret-team/manifests/v1"},
		{"GET", "/secret-unmatched-path"},
		{"BREW", "/v2/secret-team/manifests/v1"},
	}
	for _, c := range calls {
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "secret") {
					t.Errorf("%s label %s = %q: a raw path leaked into a label", f.GetName(), l.GetName(), l.GetValue())
				}
			}
			if f.GetName() == "nora_http_requests_total" {
				ls := m.GetLabel() // sorted by name: code, method, route
				key := ls[1].GetValue() + " " + ls[2].GetValue() + " " + ls[0].GetValue()
				counts[key] = m.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{
		"GET /v2/{name}/manifests/{reference} 200":  2,
		"HEAD /v2/{name}/manifests/{reference} 200": 1,
		"PUT /v2/{name}/manifests/{reference} 201":  1,
		"GET unmatched 404":                         1,
		"OTHER unmatched 405":                       1,
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("nora_http_requests_total{%s} = %v, want %v", k, counts[k], v)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("nora_http_requests_total series = %v, want %v", counts, want)
	}

	// A second handler on the same registry reuses the collectors.
	observed(t, new(bytes.Buffer), reg)
}

func TestObserveStorageMetrics(t *testing.T) {
	cfg := storage.DefaultConfig()
	cfg.Root = t.TempDir()
	store, err := storage.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	newMetrics(reg, store)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, name := range []string{"nora_storage_blob_bytes", "nora_storage_blobs", "nora_storage_repositories", "nora_storage_uploads_in_progress"} {
		if !got[name] {
			t.Errorf("Gather() has no %s", name)
		}
	}
}

// readerFromRecorder is a ResponseRecorder that, like net/http's writer,
// implements io.ReaderFrom.
type readerFromRecorder struct {
	*httptest.ResponseRecorder
	readFrom bool
}

func (r *readerFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFrom = true
	return io.Copy(r.ResponseRecorder, src)
}

func TestResponseWriterReadFrom(t *testing.T) {
	rec := &readerFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	rw := &responseWriter{ResponseWriter: rec}
	n, err := io.Copy(rw, struct{ io.Reader }{strings.NewReader("0123456789")}) // no WriteTo
	if n != 10 || err != nil {
		t.Fatalf("io.Copy = %d, %v, want 10, nil", n, err)
	}
	if !rec.readFrom {
		t.Error("io.Copy did not reach the underlying ReadFrom")
	}
	if rw.bytes != 10 || rw.status != 200 {
		t.Errorf("bytes, status = %d, %d, want 10, 200", rw.bytes, rw.status)
	}
}

// TestObserveRealServer serves a file through the wrapper on a real
// connection (the sendfile path) and uses http.ResponseController through
// Unwrap.
func TestObserveRealServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob")
	content := bytes.Repeat([]byte("x"), 1<<20)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	h := &handler{log: zerolog.New(&buf)}
	ctlErr := make(chan error, 1)
	srv := httptest.NewServer(h.observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		ctlErr <- rc.SetWriteDeadline(time.Now().Add(time.Minute))
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		io.Copy(w, f)
		w.(http.Flusher).Flush()
	})))
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(body) != len(content) {
		t.Errorf("body has %d bytes, want %d", len(body), len(content))
	}
	if err := <-ctlErr; err != nil {
		t.Errorf("ResponseController.SetWriteDeadline = %v, want nil (Unwrap)", err)
	}
	srv.Close() // wait for the handler, and so the log line
	lines := logLines(t, &buf)
	if len(lines) != 1 || lines[0]["bytes"] != float64(len(content)) {
		t.Errorf("access log = %v, want bytes %d", lines, len(content))
	}
}

func TestResponseWriterFlush(t *testing.T) {
	rec := httptest.NewRecorder()
	rw := &responseWriter{ResponseWriter: rec}
	if err := http.NewResponseController(rw).Flush(); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed || rw.status != 200 {
		t.Errorf("Flushed, status = %v, %d, want true, 200", rec.Flushed, rw.status)
	}
}

func BenchmarkObserve(b *testing.B) {
	h := &handler{log: zerolog.New(io.Discard)}
	h.metrics = newMetrics(prometheus.NewRegistry(), nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/{name}/manifests/{reference}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	srv := h.observe(mux)
	req := httptest.NewRequest("GET", "/v2/a/manifests/latest", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := httptest.NewRecorder()
		for pb.Next() {
			srv.ServeHTTP(w, req)
		}
	})
}

// TestRouteOf: the route field and label is the API route as the spec
// writes it, not ServeMux's pattern syntax.
func TestRouteOf(t *testing.T) {
	for pattern, want := range map[string]string{
		"":                                     "unmatched",
		"GET /v2/{$}":                          "/v2/",
		"POST /v2/{name}/blobs/uploads/{$}":    "/v2/{name}/blobs/uploads/",
		"GET /v2/{name}/manifests/{reference}": "/v2/{name}/manifests/{reference}",
		"/v2/":                                 "/v2/",
	} {
		if got := routeOf(pattern); got != want {
			t.Errorf("routeOf(%q) = %q, want %q", pattern, got, want)
		}
	}
}

// TestObserveRequestBytes: the body bytes a handler reads are logged and
// counted in nora_http_request_bytes_total.
func TestObserveRequestBytes(t *testing.T) {
	var buf bytes.Buffer
	reg := prometheus.NewRegistry()
	srv := observed(t, &buf, reg)
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("PUT", "/v2/app/manifests/v1", strings.NewReader("0123456789")))
	lines := logLines(t, &buf)
	if len(lines) != 1 || lines[0]["bytes_received"] != float64(10) {
		t.Errorf("access log = %v, want bytes_received 10", lines)
	}
	if got := gathered(t, reg, "nora_http_request_bytes_total"); got != 10 {
		t.Errorf("nora_http_request_bytes_total = %v, want 10", got)
	}
}

// gathered sums every series of the counter name in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
