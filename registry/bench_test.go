package registry

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/storage"
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

// BenchmarkManifestPut measures a manifest PUT by tag through the whole
// handler chain, with the audit record off and on: the record is written
// by a background writer, so a PUT should cost the same either way.
func BenchmarkManifestPut(b *testing.B) {
	for _, audit := range []bool{false, true} {
		b.Run(fmt.Sprintf("audit=%t", audit), func(b *testing.B) {
			srv, st := newTestServer(b)
			defer srv.Close()
			f := seed(b, srv.URL)
			opts := []Option{WithLogger(zerolog.Nop().Level(zerolog.WarnLevel)), WithMetrics(prometheus.NewRegistry())}
			if audit {
				w := storage.NewAuditWriter(st, func(err error) { b.Error(err) })
				defer w.Close()
				opts = append(opts, WithAudit(w))
			}
			h := New(st, opts...)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req := httptest.NewRequest("PUT", fmt.Sprintf("/v2/team/app/manifests/t%d", i%100), strings.NewReader(f.image))
				req.Header.Set("Content-Type", ociManifest)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusCreated {
					b.Fatalf("PUT = %d %s", w.Code, w.Body)
				}
				i++
			}
		})
	}
}
