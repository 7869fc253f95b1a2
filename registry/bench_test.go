package registry

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// BenchmarkManifestGet measures the server-side cost of a manifest GET by
// tag through the whole handler chain (ids, logs at warn, metrics, router,
// store), without the network.
func BenchmarkManifestGet(b *testing.B) {
	srv, st := newTestServer(b)
	defer srv.Close()
	f := seed(b, srv.URL)
	h := New(st, WithLogger(zerolog.Nop().Level(zerolog.WarnLevel)), WithMetrics(prometheus.NewRegistry()))
	req := httptest.NewRequest("GET", "/v2/team/app/manifests/v1", nil)
	req.Header.Set("Accept", ociManifest+","+ociIndex)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req.Clone(req.Context())) // the router rewrites the path in place
		if w.Code != http.StatusOK || w.Body.Len() != len(f.image) {
			b.Fatalf("GET = %d", w.Code)
		}
	}
}
