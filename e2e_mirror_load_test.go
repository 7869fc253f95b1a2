package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pullCheck pulls ref whole and checks it is want, its config and every
// layer against their digests. It returns what went wrong, so that
// goroutines can call it.
func pullCheck(ref name.Reference, want v1.Image) error {
	img, err := remote.Image(ref)
	if err != nil {
		return err
	}
	got, _ := img.Digest()
	if w, _ := want.Digest(); got != w {
		return fmt.Errorf("remote.Image(%s).Digest() = %s, want %s", ref, got, w)
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	raw, err := img.RawConfigFile()
	if err != nil || sha256of(raw) != m.Config.Digest.String() {
		return fmt.Errorf("config of %s: %d bytes hashing to %s (err %v), want %s", ref, len(raw), sha256of(raw), err, m.Config.Digest)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if d, _ := l.Digest(); err != nil || h != d {
			return fmt.Errorf("layer %d of %s hashes to %s (err %v), want %s", i, ref, h, err, d)
		}
	}
	return nil
}

// imageBlobs returns the digests of img's config and layers.
func imageBlobs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// TestE2EMirrorFaultConcurrent: 50 clients pull one cold image through
// the cache at once. Each gets the right bytes, and the upstream serves
// exactly one GET of the manifest and one of each blob. HEADs (tag
// revalidation) and GET /v2/ are not counted.
func TestE2EMirrorFaultConcurrent(t *testing.T) {
	up, proxy, cache := faultSetup(t, "")
	img := pushRandom(t, up, "many/app:v1", 1<<20, 3)
	ref := cache.ref(t, "up.example/many/app:v1")
	const clients = 50
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() { errs <- pullCheck(ref, img) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := proxy.count("GET", "/v2/many/app/manifests/v1"); n != 1 {
		t.Errorf("upstream GETs of many/app:v1 = %d, want 1", n)
	}
	for _, d := range imageBlobs(t, img) {
		if n := proxy.count("GET", "/v2/many/app/blobs/"+d.String()); n != 1 {
			t.Errorf("upstream GETs of blob %s = %d, want 1", d, n)
		}
	}
	t.Logf("upstream requests: %v", proxy.snapshot())
}

// TestE2EMirrorFaultStallJoin: while the upstream holds a cold layer
// halfway, 9 more clients ask for it. When the upstream goes on, all 10
// get the whole layer, from one upstream GET; when it cuts the
// connection instead, each of the 10 transfers fails before its last byte
// and nothing is cached.
func TestE2EMirrorFaultStallJoin(t *testing.T) {
	up, proxy, cache := faultSetup(t, "")
	img := pushRandom(t, up, "join/app:v1", 4<<20, 2)
	for i, then := range []fault{{}, {kind: faultCut}} {
		d, size := layerOf(t, img, i)
		proxy.set(fault{kind: faultStall, match: d.String(), after: size / 2})
		var wg sync.WaitGroup
		get := func() {
			wg.Go(func() {
				b, err := getBlob(cache, "up.example/join/app", d)
				whole := err == nil && sha256of(b) == d.String()
				if want := then.kind == faultPass; whole != want || (!whole && int64(len(b)) >= size) {
					t.Errorf("upstream stalled then fault %d: GET of the layer = %d of %d bytes, err %v; want whole %v, else cut before the last byte", then.kind, len(b), size, err, want)
				}
			})
		}
		get()
		proxy.waitStalled()
		for range 9 {
			get()
		}
		time.Sleep(200 * time.Millisecond) // the late ones are waiting too
		proxy.set(then)
		wg.Wait()
		if n := proxy.count("GET", "/v2/join/app/blobs/"+d.String()); n != 1 {
			t.Errorf("upstream stalled then fault %d: upstream GETs of the layer = %d, want 1", then.kind, n)
		}
		// The clients had the last byte once the digest checked; the
		// cache commits the blob just after. A failed fetch has ended
		// before they did.
		if then.kind == faultPass && !blobCommitted(t, cache, d) {
			t.Errorf("upstream stalled then fault %d: layer not stored, want it stored", then.kind)
		}
		if then.kind != faultPass && blobStored(t, cache, d) {
			t.Errorf("upstream stalled then fault %d: layer stored, want it not stored", then.kind)
		}
	}
}

// TestE2EMirrorFaultGC runs `registry gc` (through the running cache's
// admin socket) with no grace and untagged manifests deleted, over an
// image and one platform of an index pulled through the cache, while the
// upstream holds a layer of another image halfway. That fetch completes
// and, with the upstream stopped, all of them still pull, without a GET
// upstream.
func TestE2EMirrorFaultGC(t *testing.T) {
	up, proxy, cache := faultSetup(t, `revalidate = "1s"

[gc]
interval = "0"
grace = "0s"
delete_untagged = true`)
	platforms := []v1.Image{pushRandom(t, up, "gc/multi:amd64", 64<<10, 1), pushRandom(t, up, "gc/multi:arm64", 64<<10, 1)}
	img := pushRandom(t, up, "gc/app:v1", 1<<20, 2)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: platforms[0], Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: platforms[1], Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if err := remote.WriteIndex(up.ref(t, "gc/multi:v1"), idx); err != nil {
		t.Fatal(err)
	}
	// Only the index and its amd64 image are pulled through the cache.
	pullIndex := func() {
		t.Helper()
		got, err := remote.Index(cache.ref(t, "up.example/gc/multi:v1"))
		if err != nil {
			t.Fatalf("remote.Index(gc/multi:v1) through the cache = %v", err)
		}
		if g, w := digestOf(t, got), digestOf(t, idx); g != w {
			t.Errorf("remote.Index(gc/multi:v1).Digest() = %s, want %s", g, w)
		}
		pullWhole(t, cache.ref(t, "up.example/gc/multi@"+digestOf(t, platforms[0]).String()), platforms[0])
	}
	pullIndex()
	d, size := layerOf(t, img, 0)
	proxy.set(fault{kind: faultStall, match: d.String(), after: size / 2})
	fetched := make(chan error, 1)
	ref := cache.ref(t, "up.example/gc/app:v1")
	go func() { fetched <- pullCheck(ref, img) }()
	proxy.waitStalled()
	// Two passes: the first notes orphan files, the second deletes them.
	for range 2 {
		out := runTool(t, nil, registryBin, "gc", "--config", cache.config)
		t.Logf("registry gc: %s", out)
	}
	proxy.set(fault{})
	if err := <-fetched; err != nil {
		t.Errorf("pull of gc/app:v1 held upstream during GC = %v", err)
	}
	up.stop()
	before := proxy.snapshot()
	pullWhole(t, cache.ref(t, "up.example/gc/app:v1"), img)
	pullIndex()
	for k, n := range proxy.snapshot() {
		if strings.HasPrefix(k, "GET ") && n != before[k] {
			t.Errorf("after gc, with the upstream stopped: %s asked upstream %d times, want every GET served from the cache", k, n-before[k])
		}
	}
}

// TestE2EMirrorFaultEvict caps the cache so that it holds two of three
// images: C, A and B, pulled in that order. C's layer is held by the
// upstream halfway while A then B are pulled; B's pull evicts A and not C,
// which is less recently used (and past keep_recent) but has a blob a
// client is reading. Then C's pull completes; B and C pull from the
// cache, and A's blobs are gone from the blob store.
func TestE2EMirrorFaultEvict(t *testing.T) {
	up, proxy, cache := faultSetup(t, `max_size = "2560KiB"

[mirror]
keep_recent = "1s"`)
	imgs := map[string]v1.Image{
		"a": pushRandom(t, up, "ev/a:v1", 2<<20, 1),
		"b": pushRandom(t, up, "ev/b:v1", 1<<20, 1),
		"c": pushRandom(t, up, "ev/c:v1", 1<<20, 1),
	}
	pull := func(repo string) {
		t.Helper()
		pullWhole(t, cache.ref(t, "up.example/ev/"+repo+":v1"), imgs[repo])
	}
	// C: the manifest and config are cached; its layer is on its way.
	cLayer, cSize := layerOf(t, imgs["c"], 0)
	if _, err := remote.Image(cache.ref(t, "up.example/ev/c:v1")); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, cache, "up.example/ev/c", imageBlobs(t, imgs["c"])[0])
	proxy.set(fault{kind: faultStall, match: cLayer.String(), after: cSize / 2})
	cDone := make(chan error, 1)
	go func() {
		b, err := getBlob(cache, "up.example/ev/c", cLayer)
		if err == nil && sha256of(b) != cLayer.String() {
			err = fmt.Errorf("%d bytes hashing to %s", len(b), sha256of(b))
		}
		cDone <- err
	}()
	proxy.waitStalled()
	pull("a")
	time.Sleep(1500 * time.Millisecond) // A and C are past keep_recent

	pull("b")
	aBlobs := imageBlobs(t, imgs["a"])
	deadline := time.Now().Add(10 * time.Second)
	for blobStored(t, cache, aBlobs[1]) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	proxy.set(fault{})
	if err := <-cDone; err != nil {
		t.Errorf("GET of C's layer while B's pull evicted = %v, want the whole blob", err)
	}
	for _, d := range aBlobs {
		if blobStored(t, cache, d) {
			t.Errorf("A's blob %s still stored after B's pull took the cache past max_size", d)
		}
	}

	before := proxy.snapshot()
	pull("b")
	pull("c")
	for k, n := range proxy.snapshot() {
		if strings.HasPrefix(k, "GET ") && n != before[k] {
			t.Errorf("warm pulls of B and C: %s asked upstream %d times, want 0", k, n-before[k])
		}
	}
}
