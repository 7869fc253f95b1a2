package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/minio/minio-go/v7"
)

// Fault tests of the pull-through cache: a registry process caches a
// second one through a faultProxy (e2e_faultproxy_test.go), which counts
// what the cache asks upstream and breaks its answers.

// faultSetup starts an upstream registry, a proxy in front of it, and a
// cache of the proxy answering for up.example, with extra keys in its
// upstream entry.
func faultSetup(t *testing.T, extra string) (*e2eServer, *faultProxy, *e2eServer) {
	t.Helper()
	up := startServer(t)
	proxy := startFaultProxy(t, up)
	return up, proxy, startCache(t, proxy, "up.example", extra)
}

// pushRandom pushes a random image of layers layers of size bytes each to
// ref on s.
func pushRandom(t *testing.T, s *e2eServer, ref string, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, ref), img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", ref, err)
	}
	return img
}

// layerOf returns the digest and size of img's layer i.
func layerOf(t *testing.T, img v1.Image, i int) (v1.Hash, int64) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[i].Digest, m.Layers[i].Size
}

// getBlob GETs blob d of repo from s and returns the bytes that arrived
// and what ended the transfer early, if anything.
func getBlob(s *e2eServer, repo string, d v1.Hash) ([]byte, error) {
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Get(s.url("/v2/" + repo + "/blobs/" + d.String()))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s: %s", resp.Status, b)
	}
	return b, err
}

// checkBlob GETs blob d of repo from s and fails unless it arrives whole,
// with the right digest.
func checkBlob(t *testing.T, s *e2eServer, repo string, d v1.Hash) {
	t.Helper()
	b, err := getBlob(s, repo, d)
	if err != nil || sha256of(b) != d.String() {
		t.Errorf("GET %s@%s = %d bytes hashing to %s (err %v), want the whole blob", repo, d, len(b), sha256of(b), err)
	}
}

// blobCommitted reports whether blob d is stored within a few seconds:
// a client has a cold blob once its digest checks, and the cache commits
// it just after.
func blobCommitted(t *testing.T, s *e2eServer, d v1.Hash) bool {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if blobStored(t, s, d) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// blobStored reports whether s's blob store holds blob d under its digest.
func blobStored(t *testing.T, s *e2eServer, d v1.Hash) bool {
	t.Helper()
	key := "blobs/" + d.Algorithm + "/" + d.Hex[:2] + "/" + d.Hex
	if s.s3 != nil {
		_, err := s.s3.Client().StatObject(context.Background(), s.s3.Bucket, key, minio.StatObjectOptions{})
		if err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
			t.Fatalf("StatObject(%s) = %v", key, err)
		}
		return err == nil
	}
	_, err := os.Stat(filepath.Join(s.dataDir, filepath.FromSlash(key)))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestE2EMirrorFaultBlob: an upstream connection cut in the middle of a
// blob, and a blob with one byte flipped (in the middle, or the last),
// make the transfer of each of 10 clients asking at once fail before its
// last byte, and leave nothing in the cache; once the upstream behaves,
// the blob arrives whole and is cached.
func TestE2EMirrorFaultBlob(t *testing.T) {
	up, proxy, cache := faultSetup(t, "")
	img := pushRandom(t, up, "blob/app:v1", 2<<20, 3)
	for i, tc := range []struct {
		kind faultKind
		at   func(size int64) int64
	}{
		{faultCut, func(size int64) int64 { return size / 2 }},
		{faultCorrupt, func(size int64) int64 { return size / 2 }},
		{faultCorrupt, func(size int64) int64 { return size - 1 }},
	} {
		d, size := layerOf(t, img, i)
		proxy.set(fault{kind: tc.kind, match: d.String(), after: tc.at(size)})
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				b, err := getBlob(cache, "up.example/blob/app", d)
				if err == nil || int64(len(b)) >= size {
					t.Errorf("fault %d at byte %d: GET of the blob = %d of %d bytes, err %v; want an error before the last byte", tc.kind, tc.at(size), len(b), size, err)
				}
			})
		}
		wg.Wait()
		if blobStored(t, cache, d) {
			t.Errorf("fault %d: the cache stored blob %s", tc.kind, d)
		}
		proxy.set(fault{})
		before := proxy.count("GET", "/v2/blob/app/blobs/"+d.String())
		checkBlob(t, cache, "up.example/blob/app", d)
		if !blobCommitted(t, cache, d) {
			t.Errorf("fault %d: blob %s not stored after a whole fetch", tc.kind, d)
		}
		if n := proxy.count("GET", "/v2/blob/app/blobs/"+d.String()) - before; n != 1 {
			t.Errorf("fault %d: upstream GETs of the blob once whole = %d, want 1", tc.kind, n)
		}
	}
	pullWhole(t, cache.ref(t, "up.example/blob/app:v1"), img)
}

// TestE2EMirrorFaultManifest: a tag cached past its revalidation
// interval is served stale, with a Warning, when the upstream answers 429
// or 5xx; a tag never cached is then 503 UNAVAILABLE with a message that
// says the upstream failed, not the cache. A manifest cut or corrupted on
// its way is not cached: 503, then 200 once it arrives whole.
func TestE2EMirrorFaultManifest(t *testing.T) {
	up, proxy, cache := faultSetup(t, `revalidate = "1s"`)
	img := pushRandom(t, up, "st/app:v1", 4096, 1)
	want := digestOf(t, img).String()
	for _, tag := range []string{"v2", "v3", "v4", "v5", "v6"} {
		if err := remote.Write(up.ref(t, "st/app:"+tag), img); err != nil {
			t.Fatal(err)
		}
	}
	accept := http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"}}
	get := func(tag string) (*http.Response, []byte) {
		return cache.do(t, "GET", "/v2/up.example/st/app/manifests/"+tag, accept, nil)
	}
	for _, tag := range []string{"v1", "v2"} {
		if resp, _ := get(tag); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET st/app:%s through the cache = %s, want 200", tag, resp.Status)
		}
	}
	time.Sleep(1100 * time.Millisecond) // past revalidate

	for tag, status := range map[string]int{"v1": http.StatusTooManyRequests, "v2": http.StatusBadGateway} {
		proxy.set(fault{kind: faultStatus, match: "/manifests/" + tag, status: status})
		resp, body := get(tag)
		if resp.StatusCode != http.StatusOK || sha256of(body) != want {
			t.Errorf("GET st/app:%s with upstream %d = %s %s, want 200 %s", tag, status, resp.Status, sha256of(body), want)
		}
		if w := resp.Header.Get("Warning"); !strings.Contains(w, "110") {
			t.Errorf("GET st/app:%s with upstream %d: Warning %q, want 110 response is stale", tag, status, w)
		}
		if proxy.count("HEAD", "/v2/st/app/manifests/"+tag) == 0 {
			t.Errorf("GET st/app:%s past revalidate asked nothing upstream", tag)
		}
	}
	for tag, status := range map[string]int{"v3": http.StatusTooManyRequests, "v4": http.StatusServiceUnavailable} {
		proxy.set(fault{kind: faultStatus, match: "/manifests/" + tag, status: status})
		resp, body := get(tag)
		var e struct {
			Errors []struct{ Code, Message string }
		}
		json.Unmarshal(body, &e)
		if resp.StatusCode != http.StatusServiceUnavailable || len(e.Errors) != 1 || e.Errors[0].Code != "UNAVAILABLE" || !strings.Contains(e.Errors[0].Message, "upstream") {
			t.Errorf("GET uncached st/app:%s with upstream %d = %s %s, want 503 with one UNAVAILABLE error that names the upstream", tag, status, resp.Status, body)
		}
	}
	for tag, kind := range map[string]faultKind{"v5": faultCut, "v6": faultCorrupt} {
		proxy.set(fault{kind: kind, match: "/manifests/" + tag, after: 100})
		if resp, body := get(tag); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET st/app:%s with its manifest broken upstream (fault %d) = %s %s, want 503", tag, kind, resp.Status, body)
		}
		proxy.set(fault{})
		if resp, body := get(tag); resp.StatusCode != http.StatusOK || sha256of(body) != want || resp.Header.Get("Warning") != "" {
			t.Errorf("GET st/app:%s once whole upstream = %s %s, Warning %q; want 200 %s, none", tag, resp.Status, sha256of(body), resp.Header.Get("Warning"), want)
		}
	}
}

// TestE2EMirrorFaultRestart kills the cache (SIGKILL) while the upstream
// holds a blob it is fetching halfway. After a restart no part of the blob
// is visible: it is not stored, a HEAD answers its whole size, and a GET
// fetches it again whole. Once GC ran, the data directory holds no file
// outside blobs/ but the metadata: the half-written file is gone (on S3
// the bytes sat in a multipart upload, which the driver aborts later).
func TestE2EMirrorFaultRestart(t *testing.T) {
	up, proxy, cache := faultSetup(t, `
[gc]
interval = "0"
grace = "0s"`)
	img := pushRandom(t, up, "big/app:v1", 8<<20, 1)
	d, size := layerOf(t, img, 0)
	proxy.set(fault{kind: faultStall, match: d.String(), after: size / 2})
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := getBlob(cache, "up.example/big/app", d)
		got <- result{len(b), err}
	}()
	proxy.waitStalled()
	time.Sleep(100 * time.Millisecond) // the cache writes what it received
	cache.kill()
	if r := <-got; r.err == nil || int64(r.n) >= size {
		t.Errorf("GET of the blob while the cache was killed = %d of %d bytes, err %v; want an error before the last byte", r.n, size, r.err)
	}
	cache.start()
	if blobStored(t, cache, d) {
		t.Errorf("after kill -9 mid-fetch, the cache stored blob %s", d)
	}
	resp, _ := cache.do(t, "HEAD", "/v2/up.example/big/app/blobs/"+d.String(), nil, nil)
	if resp.StatusCode == http.StatusOK && (resp.ContentLength != size || resp.Header.Get("Docker-Content-Digest") != d.String()) {
		t.Errorf("HEAD of the blob after restart = %d bytes, digest %s; want %d, %s", resp.ContentLength, resp.Header.Get("Docker-Content-Digest"), size, d)
	}
	proxy.set(fault{})
	checkBlob(t, cache, "up.example/big/app", d)
	pullWhole(t, cache.ref(t, "up.example/big/app:v1"), img)

	// The first pass notes orphan files, the second deletes them.
	runTool(t, nil, registryBin, "gc", "--config", cache.config)
	runTool(t, nil, registryBin, "gc", "--config", cache.config)
	filepath.WalkDir(cache.dataDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || path == filepath.Join(cache.dataDir, "blobs") {
			return cmp.Or(err, fs.SkipDir) // blobs/ holds what was committed
		}
		// The metadata, and keys the server keeps (the dashboard's).
		if e.IsDir() || slices.Contains([]string{"metadata.db", "metadata.wal", "meta.db", "token.key", "ui.key", "ui.logout"}, e.Name()) {
			return nil
		}
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			t.Errorf("after kill -9 mid-fetch, a restart and two GC passes, %s (%d bytes) is left, want no file outside blobs/ but the metadata", path, info.Size())
		}
		return nil
	})
}
