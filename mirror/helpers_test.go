package mirror_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/mirror"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// Fault modes of an upstream.
const (
	healthy int32 = iota
	down          // every request answers 503
	tooMany       // every request answers 429 with Retry-After
	corrupt       // blob bodies arrive with their first byte flipped
	stall         // blob bodies stop after 1 KiB until the request ends
)

// upstream is a registry under test with a wrapping handler that counts
// requests, records the Authorization headers it receives, and injects
// faults.
type upstream struct {
	*httptest.Server
	host         string
	mode         atomic.Int32
	blobGets     atomic.Int64
	manifestReqs atomic.Int64
	blobDelay    time.Duration

	mu    sync.Mutex
	auths []string
}

func newUpstream(t *testing.T, h http.Handler) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.auths = append(u.auths, r.Header.Get("Authorization"))
		u.mu.Unlock()
		switch u.mode.Load() {
		case down:
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		case tooMany:
			w.Header().Set("Retry-After", "60")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		isBlob := strings.Contains(r.URL.Path, "/blobs/sha256:")
		if strings.Contains(r.URL.Path, "/manifests/") {
			u.manifestReqs.Add(1)
		}
		if isBlob && r.Method == http.MethodGet {
			u.blobGets.Add(1)
			time.Sleep(u.blobDelay)
			switch u.mode.Load() {
			case corrupt:
				w = &flipWriter{ResponseWriter: w}
			case stall:
				w = &stallWriter{ResponseWriter: w, left: 1024, done: r.Context().Done()}
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	u.host = strings.TrimPrefix(u.URL, "http://")
	return u
}

// newGGCRUpstream is go-containerregistry's registry: a third party one.
func newGGCRUpstream(t *testing.T) *upstream {
	return newUpstream(t, ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
}

// sawAuthPrefix reports whether a request reached u with an
// Authorization header starting with s.
// requests is how many requests reached u.
func (u *upstream) requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.auths)
}

func (u *upstream) sawAuthPrefix(s string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, a := range u.auths {
		if strings.HasPrefix(a, s) {
			return true
		}
	}
	return false
}

// flipWriter flips the first byte of the body written through it.
type flipWriter struct {
	http.ResponseWriter
	done bool
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if !f.done && len(p) > 0 {
		f.done = true
		q := bytes.Clone(p)
		q[0] ^= 0xff
		return f.ResponseWriter.Write(q)
	}
	return f.ResponseWriter.Write(p)
}

// stallWriter passes left bytes on, then blocks until done.
type stallWriter struct {
	http.ResponseWriter
	left int
	done <-chan struct{}
}

func (s *stallWriter) Write(p []byte) (int, error) {
	if len(p) <= s.left {
		s.left -= len(p)
		return s.ResponseWriter.Write(p)
	}
	n, _ := s.ResponseWriter.Write(p[:s.left])
	s.left = 0
	s.ResponseWriter.(http.Flusher).Flush()
	<-s.done
	return n, io.ErrClosedPipe
}

// hub is an upstream entry answering for docker.io.
func hub(u *upstream) mirror.Upstream {
	return mirror.Upstream{Name: "hub", URL: u.URL, Insecure: true, Hosts: []string{"docker.io", "index.docker.io"}}
}

// newMirror serves a fresh filesystem store with the mirror of ups on.
func newMirror(t *testing.T, ups ...mirror.Upstream) (*httptest.Server, *storage.Store) {
	t.Helper()
	srv, st, _ := newMirrorWith(t, nil, ups...)
	return srv, st
}

// newMirrorWith is newMirror with more registry options.
func newMirrorWith(t *testing.T, opts []registry.Option, ups ...mirror.Upstream) (*httptest.Server, *storage.Store, *mirror.Mirror) {
	t.Helper()
	srv, st, m, stop := startMirror(t, t.TempDir(), mirror.Config{Upstreams: ups}, opts...)
	t.Cleanup(stop)
	return srv, st, m
}

// startMirror serves the store at root with the mirror of cfg on, until
// stop.
func startMirror(t *testing.T, root string, cfg mirror.Config, opts ...registry.Option) (*httptest.Server, *storage.Store, *mirror.Mirror, func()) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mirror.New(cfg, st, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(st, append(opts, registry.WithMirror(m))...))
	return srv, st, m, func() { srv.Close(); m.Close(); st.Close() }
}

// push writes a random image of layers blobs of size bytes to ref.
func push(t *testing.T, ref string, size int64, layers int64, opts ...remote.Option) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, ref), img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return img
}

func mustRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// noRetry keeps a client from retrying, so a failure shows at once.
var noRetry = remote.WithRetryBackoff(remote.Backoff{Steps: 1})

// pull pulls ref with go-containerregistry and reads and verifies every
// blob, returning the manifest digest.
func pull(t *testing.T, ref string, opts ...remote.Option) (v1.Hash, error) {
	t.Helper()
	img, err := remote.Image(mustRef(t, ref), append([]remote.Option{noRetry}, opts...)...)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := validate.Image(img); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// get sends a plain HTTP request with headers as key/value pairs.
func get(t *testing.T, method, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// layerDigest is the digest of img's layer i.
func layerDigest(t *testing.T, img v1.Image, i int) v1.Hash {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := layers[i].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
