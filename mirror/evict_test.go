package mirror_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/gc"
	"github.com/nora-registry/nora/mirror"
	"github.com/nora-registry/nora/storage"
)

// TestEvictLeastRecentlyPulled: past max_size, the image pulled least
// recently goes, its blobs are deleted, and the others are still served
// with the upstream down.
func TestEvictLeastRecentlyPulled(t *testing.T) {
	defer mirror.SetEvictAfter(0)()
	ctx := context.Background()
	up := newGGCRUpstream(t)
	b := push(t, up.host+"/library/b:1", 100<<10, 1)
	for _, n := range []string{"a", "c"} {
		push(t, up.host+"/library/"+n+":1", 100<<10, 1)
	}
	u := hub(up)
	u.MaxSize = "250KiB" // two images fit, not three
	srv, st, m := newMirrorWith(t, nil, u)
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, n := range []string{"a", "b", "a", "c"} {
		if _, err := pull(t, host+"/docker.io/library/"+n+":1"); err != nil {
			t.Fatalf("pull %s: %v", n, err)
		}
		// A blob is committed just after its client has it, and its
		// link's time counts as a use: let it land before the next pull.
		m.Settle()
	}
	// No Evict call: the fetches of c start a pass by themselves.
	waitEvicted(t, st, nil, "docker.io/library/b")
	if err := m.Evict(ctx); err != nil { // waits for that pass to end
		t.Fatal(err)
	}

	layer := digest.Digest(layerDigest(t, b, 0).String())
	if sizes := st.BlobSizes(ctx, []digest.Digest{layer}); len(sizes) != 0 {
		t.Errorf("BlobSizes(evicted layer) = %v, want none", sizes)
	}
	if rc, err := st.OpenBlob(ctx, layer, 0); err == nil {
		rc.Close()
		t.Errorf("OpenBlob(evicted layer) succeeded, want its file deleted")
	}
	if got := gathered(t, reg, "nora_mirror_evictions_total", map[string]string{"upstream": "hub"}); got != 1 {
		t.Errorf("nora_mirror_evictions_total = %v, want 1", got)
	}
	if got := gathered(t, reg, "nora_mirror_cache_bytes", map[string]string{"upstream": "hub"}); got <= 0 || got > 250<<10 {
		t.Errorf("nora_mirror_cache_bytes = %v, want within (0, 250KiB]", got)
	}

	up.mode.Store(down)
	for _, n := range []string{"a", "c"} {
		if _, err := pull(t, host+"/docker.io/library/"+n+":1"); err != nil {
			t.Errorf("pull %s with upstream down: %v", n, err)
		}
	}
	if _, err := pull(t, host+"/docker.io/library/b:1"); err == nil {
		t.Errorf("pull of evicted b with upstream down succeeded")
	}
}

// TestEvictSparesImageBeingPulled: an image whose blob a client is
// fetching is not evicted, even as the least recently used one, and its
// pull completes.
func TestEvictSparesImageBeingPulled(t *testing.T) {
	defer mirror.SetEvictAfter(0)()
	ctx := context.Background()
	inner := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	var hold atomic.Value // digest of the blob upstream holds back
	reached, release := make(chan struct{}), make(chan struct{})
	var reachOnce, releaseOnce sync.Once
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, _ := hold.Load().(string); d != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, d) {
			reachOnce.Do(func() { close(reached) })
			<-release
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	push(t, up.host+"/library/a:1", 100<<10, 1)
	b := push(t, up.host+"/library/b:1", 100<<10, 1)
	layer := layerDigest(t, b, 0).String()
	hold.Store(layer)
	u := hub(up)
	u.MaxSize = "50KiB" // less than either image
	srv, st, m := newMirrorWith(t, nil, u)
	host := strings.TrimPrefix(srv.URL, "http://")

	done := make(chan error, 1)
	go func() {
		_, err := pull(t, host+"/docker.io/library/b:1")
		done <- err
	}()
	select {
	case <-reached:
	case err := <-done:
		t.Fatalf("pull b ended before its layer was held: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("pull b never asked upstream for its layer")
	}
	if _, err := pull(t, host+"/docker.io/library/a:1"); err != nil {
		t.Fatalf("pull a: %v", err)
	}
	waitEvicted(t, st, m, "docker.io/library/a")
	if _, err := st.GetManifest(ctx, "docker.io/library/b", "1"); err != nil {
		t.Errorf("b, being pulled, was evicted: %v", err)
	}
	releaseOnce.Do(func() { close(release) })
	// Once done, b is fair game (no protection after use in this test),
	// but its pull completed with every byte verified.
	if err := <-done; err != nil {
		t.Fatalf("pull b: %v", err)
	}
}

// waitEvicted waits, for at most 5 s, until repo's tag 1 is gone, running
// eviction passes of m if m is not nil: a client's last request may still
// count as running for a moment after it has read its response.
func waitEvicted(t *testing.T, st *storage.Store, m *mirror.Mirror, repo string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if m != nil {
			if err := m.Evict(ctx); err != nil {
				t.Fatalf("Evict: %v", err)
			}
		}
		_, err := st.GetManifest(ctx, repo, "1")
		if errors.Is(err, storage.ErrManifestNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:1 not evicted: GetManifest = %v", repo, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEvictSparesRecentPulls: with the default protection, images pulled
// within the last minutes stay even when the cache is over its cap.
func TestEvictSparesRecentPulls(t *testing.T) {
	ctx := context.Background()
	up := newGGCRUpstream(t)
	push(t, up.host+"/library/a:1", 100<<10, 1)
	u := hub(up)
	u.MaxSize = "10KiB"
	srv, st, m := newMirrorWith(t, nil, u)
	if _, err := pull(t, strings.TrimPrefix(srv.URL, "http://")+"/docker.io/library/a:1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetManifest(ctx, "docker.io/library/a", "1"); err != nil {
		t.Errorf("a, just pulled, was evicted: %v", err)
	}
}

// TestEvictMeasuresAfterGC: Evict, which the server runs after each GC
// pass, measures an uncapped cache again, so nora_mirror_cache_bytes
// drops when GC deleted cached content.
func TestEvictMeasuresAfterGC(t *testing.T) {
	ctx := context.Background()
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/a:1", 100<<10, 1)
	srv, st, m := newMirrorWith(t, nil, hub(up))
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := pull(t, strings.TrimPrefix(srv.URL, "http://")+"/docker.io/library/a:1"); err != nil {
		t.Fatal(err)
	}
	m.Settle()
	if got := gathered(t, reg, "nora_mirror_cache_bytes", map[string]string{"upstream": "hub"}); got < 100<<10 {
		t.Fatalf("nora_mirror_cache_bytes after a pull = %v, want at least 100KiB", got)
	}
	if err := st.DeleteManifest(ctx, "docker.io/library/a", digest.Digest(digestOf(t, img).String())); err != nil {
		t.Fatal(err)
	}
	p, err := gc.Plan(ctx, st, gc.Options{Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gc.Apply(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	if err := m.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, reg, "nora_mirror_cache_bytes", map[string]string{"upstream": "hub"}); got != 0 {
		t.Errorf("nora_mirror_cache_bytes after GC = %v, want 0", got)
	}
}

// TestEvictAtStart: a mirror opened over a cache already past its cap
// measures it and trims it in the background, without delaying New and
// without any fetch or Evict call.
func TestEvictAtStart(t *testing.T) {
	defer mirror.SetEvictAfter(0)()
	up := newGGCRUpstream(t)
	for _, n := range []string{"a", "b", "c"} {
		push(t, up.host+"/library/"+n+":1", 100<<10, 1)
	}
	u := hub(up)
	srv, st, _ := newMirrorWith(t, nil, u)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, n := range []string{"a", "b", "c"} {
		if _, err := pull(t, host+"/docker.io/library/"+n+":1"); err != nil {
			t.Fatalf("pull %s: %v", n, err)
		}
	}

	u.MaxSize = "250KiB" // two images fit, not three
	cfg := mirror.Config{Upstreams: []mirror.Upstream{u}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m, err := mirror.New(cfg, st, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	waitEvicted(t, st, nil, "docker.io/library/a") // the least recently used
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := gathered(t, reg, "nora_mirror_cache_bytes", map[string]string{"upstream": "hub"})
		if got > 0 && got <= 250<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nora_mirror_cache_bytes = %v, want within (0, 250KiB] once the start pass ended", got)
		}
	}
}
