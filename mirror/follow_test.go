package mirror_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus"
)

// gatedUpstream is a third-party upstream whose GET of one blob sends
// its first bytes, then waits for open before the rest.
type gatedUpstream struct {
	*upstream
	mu    sync.Mutex
	blob  string // digest whose GET is gated; "" for none
	first int
	open  chan struct{}
	once  sync.Once
}

func newGatedUpstream(t *testing.T) *gatedUpstream {
	g := &gatedUpstream{open: make(chan struct{})}
	inner := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	g.upstream = newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		gated := g.blob != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, g.blob)
		g.mu.Unlock()
		if gated {
			w = &gateWriter{ResponseWriter: w, left: g.first, open: g.open}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(g.release)
	return g
}

// release lets every gated GET go on.
func (g *gatedUpstream) release() { g.once.Do(func() { close(g.open) }) }

func (g *gatedUpstream) gate(blob string, first int) {
	g.mu.Lock()
	g.blob, g.first = blob, first
	g.mu.Unlock()
}

// gateWriter passes left bytes on, then waits for open.
type gateWriter struct {
	http.ResponseWriter
	left int
	open <-chan struct{}
}

func (w *gateWriter) Write(p []byte) (int, error) {
	if w.left < 0 || len(p) <= w.left {
		w.left -= len(p)
		return w.ResponseWriter.Write(p)
	}
	n, err := w.ResponseWriter.Write(p[:w.left])
	w.ResponseWriter.(http.Flusher).Flush()
	w.left = -1
	if err != nil {
		return n, err
	}
	<-w.open
	m, err := w.ResponseWriter.Write(p[n:])
	return n + m, err
}

// TestLateJoinerStreams: a client that asks for a cold blob while another
// one's fetch is under way receives what has arrived at once, without
// waiting for the whole blob, and both get it whole and verified from one
// upstream GET.
func TestLateJoinerStreams(t *testing.T) {
	up := newGatedUpstream(t)
	img := push(t, up.host+"/library/app:1", 4<<20, 1)
	ld := layerDigest(t, img, 0)
	up.gate(ld.String(), 1<<20)
	srv, _, m := newMirrorWith(t, nil, hub(up.upstream))
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	url := srv.URL + "/v2/docker.io/library/app/blobs/" + ld.String()

	first := startRead(t, url)
	first.waitFor(t, 512<<10)
	late := startRead(t, url)
	late.waitFor(t, 512<<10) // upstream still holds back all but 1 MiB
	up.release()
	for i, r := range []*reader{first, late} {
		if got := r.result(t); got != ld.Hex {
			t.Errorf("client %d got content %s, want %s", i, got, ld.Hex)
		}
	}
	if n := up.blobGets.Load(); n != 1 {
		t.Errorf("upstream blob GETs = %d, want 1", n)
	}
	if got := gathered(t, reg, "nora_mirror_requests_total", map[string]string{"result": "coalesced"}); got != 1 {
		t.Errorf("nora_mirror_requests_total{result=coalesced} = %v, want 1", got)
	}
}

// TestSlowClientDoesNotHoldFetch: a client that started a cold blob's
// fetch and then reads nothing neither stalls the fetch nor the other
// clients of that blob.
func TestSlowClientDoesNotHoldFetch(t *testing.T) {
	up := newGGCRUpstream(t)
	// Uncompressed random bytes: more than socket buffers hold, quick to
	// make.
	layer := static.NewLayer(randomBytes(t, 32<<20), types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, up.host+"/library/app:1"), img); err != nil {
		t.Fatal(err)
	}
	ld := layerDigest(t, img, 0)
	srv, _, _ := newMirrorWith(t, nil, hub(up))

	stuck, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	fmt.Fprintf(stuck, "GET /v2/docker.io/library/app/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n", ld)
	for deadline := time.Now().Add(10 * time.Second); up.blobGets.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stuck client's GET did not start a fetch")
		}
	}
	r := startRead(t, srv.URL+"/v2/docker.io/library/app/blobs/"+ld.String())
	if got := r.result(t); got != ld.Hex {
		t.Errorf("second client got content %s, want %s", got, ld.Hex)
	}
}

// reader GETs a URL in the background, hashing the body.
type reader struct {
	mu   sync.Mutex
	n    int64
	sum  string
	err  error
	done chan struct{}
}

func startRead(t *testing.T, url string) *reader {
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		resp, err := http.Get(url)
		if err != nil {
			r.err = err
			return
		}
		defer resp.Body.Close()
		h := sha256.New()
		buf := make([]byte, 32<<10)
		for {
			k, err := resp.Body.Read(buf)
			h.Write(buf[:k])
			r.mu.Lock()
			r.n += int64(k)
			r.mu.Unlock()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.err = err
				return
			}
		}
		r.sum = hex.EncodeToString(h.Sum(nil))
	}()
	return r
}

// waitFor waits until r has read n bytes.
func (r *reader) waitFor(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		got := r.n
		r.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client read %d bytes in 20 s, want at least %d", got, n)
		}
	}
}

// result waits for r's GET to end and returns the hex SHA-256 of its body.
func (r *reader) result(t *testing.T) string {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the GET did not end in 30 s")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.sum
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
