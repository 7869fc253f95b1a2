package replicate

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// cuttingLink is a proxy to a registry that drops the connection after
// every `every` bytes of a blob going through it: of a PATCH body on its
// way in, or of a blob GET's body on its way out.
type cuttingLink struct {
	to    *url.URL
	every int64
	in    atomic.Int64 // PATCH body bytes passed on
	out   atomic.Int64 // blob body bytes passed back
}

func (l *cuttingLink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.RequestURI = l.to.Scheme, l.to.Host, ""
	if r.Method == http.MethodPatch {
		out.Body = io.NopCloser(&dropAfter{r: r.Body, left: l.every, n: &l.in})
	}
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		panic(http.ErrAbortHandler) // the link dropped
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodGet {
		io.Copy(w, resp.Body)
		return
	}
	if _, err := io.Copy(w, &dropAfter{r: resp.Body, left: l.every, n: &l.out}); err != nil {
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

// dropAfter reads left bytes from r, then fails.
type dropAfter struct {
	r    io.Reader
	left int64
	n    *atomic.Int64
}

var errDropped = errors.New("link dropped")

func (d *dropAfter) Read(p []byte) (int, error) {
	if d.left <= 0 {
		return 0, errDropped
	}
	if int64(len(p)) > d.left {
		p = p[:d.left]
	}
	k, err := d.r.Read(p)
	d.left -= int64(k)
	d.n.Add(int64(k))
	return k, err
}

func newRegistry(t *testing.T) *httptest.Server {
	st, err := storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(st))
	t.Cleanup(func() { srv.Close(); st.Close() })
	return srv
}

func behind(t *testing.T, srv *httptest.Server, every int64) (*httptest.Server, *cuttingLink) {
	u, _ := url.Parse(srv.URL)
	l := &cuttingLink{to: u, every: every}
	p := httptest.NewServer(l)
	t.Cleanup(p.Close)
	return p, l
}

// TestResumeOverCuttingLinks copies a 16 MiB layer over links that drop
// every 3 MiB on the source side and every 5 MiB on the target side: the
// copy completes, the blob arrives whole, and little more than the blob
// crosses either link.
func TestResumeOverCuttingLinks(t *testing.T) {
	src, dst := newRegistry(t), newRegistry(t)
	srcLink, fromSrc := behind(t, src, 3<<20)
	dstLink, toDst := behind(t, dst, 5<<20)
	const size = 16 << 20
	data := make([]byte, size)
	rand.Read(data)
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(data, types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	put(t, endpoint(t, src.URL), "team/app:v1", img)
	from, to := endpoint(t, srcLink.URL), endpoint(t, dstLink.URL)
	sel, _ := NewSelection([]string{"team/app"}, nil)
	job := Job{From: from, To: to, Select: sel}
	items, err := Plan(context.Background(), job)
	if err != nil || len(items) != 1 || items[0].Err != nil {
		t.Fatalf("Plan = %v, %v", items, err)
	}
	results := Apply(context.Background(), job, items, NewLines(io.Discard))
	if r := results[0]; r.Status != Copied {
		t.Fatalf("Apply = %s: %v", r.Status, r.Err)
	}
	ref, err := name.ParseReference(endpoint(t, dst.URL).Registry.Name()+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("copied image %s, want %s", d, want)
	}
	layers, _ := got.Layers()
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != string(data) {
		t.Errorf("copied layer differs (%d bytes)", len(b))
	}
	in, out := toDst.in.Load(), fromSrc.out.Load()
	t.Logf("over the links: %d bytes to the target, %d from the source, for a %d-byte layer", in, out, size)
	if in > size*5/4 || out > size*5/4 {
		t.Errorf("%d bytes went to the target and %d came from the source for a %d-byte layer: the copy started over instead of resuming", in, out, size)
	}
}
