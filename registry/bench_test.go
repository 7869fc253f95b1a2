package registry

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

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

// BenchmarkSmallImagePush measures what `make bench` phase "small" asks of
// the server, without the network: 8 concurrent clients each push images
// of a 1 MiB layer POSTed with ?digest=, a config POSTed the same way and
// a manifest PUT by tag, each image to a new repository, through the whole
// handler chain (access log at info, metrics) onto a filesystem store in a
// temporary directory, every blob and manifest made durable.
func BenchmarkSmallImagePush(b *testing.B) {
	srv, st := newTestServer(b)
	defer srv.Close()
	h := New(st, WithLogger(zerolog.New(io.Discard).Level(zerolog.InfoLevel)), WithMetrics(prometheus.NewRegistry()))
	layers := newBenchLayers(b, 1<<20)
	var next atomic.Int64
	b.SetParallelism((8 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			repo := fmt.Sprintf("bench/small-%06d", i)
			layer, layerD := layers.layer(i)
			config := fmt.Sprintf(`{"architecture":"amd64","os":"linux","created":"%d"}`, i)
			configD := digest.FromString(config)
			for _, blob := range []struct {
				body io.Reader
				d    digest.Digest
			}{{layer, layerD}, {strings.NewReader(config), configD}} {
				req := httptest.NewRequest("POST", "/v2/"+repo+"/blobs/uploads/?digest="+string(blob.d), blob.body)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusCreated {
					b.Fatalf("POST blob = %d %s", w.Code, w.Body)
				}
			}
			req := httptest.NewRequest("PUT", "/v2/"+repo+"/manifests/latest",
				strings.NewReader(imageManifest(configD, layerD, len(config), layers.size, "")))
			req.Header.Set("Content-Type", ociManifest)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusCreated {
				b.Fatalf("PUT manifest = %d %s", w.Code, w.Body)
			}
		}
	})
}

// benchLayers hands out distinct layers of one size without hashing each
// whole: they share a random prefix, hashed once, and end in a counter.
type benchLayers struct {
	prefix []byte
	state  []byte // the sha256 state after prefix
	size   int
}

func newBenchLayers(b *testing.B, size int) *benchLayers {
	prefix := make([]byte, size-8)
	rand.Read(prefix)
	h := sha256.New()
	h.Write(prefix)
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	return &benchLayers{prefix: prefix, state: state, size: size}
}

// layer returns the body and digest of layer i.
func (l *benchLayers) layer(i int64) (io.Reader, digest.Digest) {
	var suffix [8]byte
	binary.BigEndian.PutUint64(suffix[:], uint64(i))
	h := sha256.New()
	h.(encoding.BinaryUnmarshaler).UnmarshalBinary(l.state)
	h.Write(suffix[:])
	return io.MultiReader(bytes.NewReader(l.prefix), bytes.NewReader(suffix[:])), digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
}
