package mirror_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/gc"
)

// TestColdRangeAndHead: a Range GET of a cold blob is answered once the
// whole blob is cached, as for local content; a HEAD of a cold blob is
// answered from a HEAD upstream, without fetching or caching the blob.
func TestColdRangeAndHead(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:1", 64<<10, 2)
	srv, st, m := newMirrorWith(t, nil, hub(up))
	layers, _ := img.Layers()
	l0, l1 := layerDigest(t, img, 0), layerDigest(t, img, 1)
	rc, _ := layers[0].Compressed()
	whole, _ := io.ReadAll(rc)

	resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/app/blobs/"+l0.String(), "Range", "bytes=10-19")
	if resp.StatusCode != 206 || string(body) != string(whole[10:20]) {
		t.Errorf("cold Range GET = %d %q, want 206 and bytes 10-19", resp.StatusCode, body)
	}
	size, _ := layers[1].Size()
	resp, _ = get(t, "HEAD", srv.URL+"/v2/docker.io/library/app/blobs/"+l1.String())
	if resp.StatusCode != 200 || resp.ContentLength != size || resp.Header.Get("Docker-Content-Digest") != l1.String() {
		t.Errorf("cold HEAD = %d, length %d, digest %q; want 200, %d, %s", resp.StatusCode, resp.ContentLength,
			resp.Header.Get("Docker-Content-Digest"), size, l1)
	}
	if n := up.blobGets.Load(); n != 1 {
		t.Errorf("upstream blob GETs = %d after a Range GET and a HEAD, want 1 (the HEAD fetches nothing)", n)
	}
	if _, err := st.StatBlob(context.Background(), "docker.io/library/app", digest.Digest(l1.String())); err == nil {
		t.Errorf("a HEAD cached the blob")
	}
	missing := "sha256:" + strings.Repeat("0", 64)
	if resp, _ := get(t, "HEAD", srv.URL+"/v2/docker.io/library/app/blobs/"+missing); resp.StatusCode != 404 {
		t.Errorf("HEAD of a blob upstream lacks = %d, want 404", resp.StatusCode)
	}
	up.mode.Store(down)
	if resp, _ := get(t, "HEAD", srv.URL+"/v2/docker.io/library/app/blobs/"+l1.String()); resp.StatusCode != 503 {
		t.Errorf("cold HEAD with the upstream down = %d, want 503", resp.StatusCode)
	}
	if resp, _ := get(t, "HEAD", srv.URL+"/v2/docker.io/library/app/blobs/"+l0.String()); resp.StatusCode != 200 {
		t.Errorf("warm HEAD with the upstream down = %d, want 200", resp.StatusCode)
	}
	up.mode.Store(healthy)
	resp, body = get(t, "GET", srv.URL+"/v2/docker.io/library/app/blobs/"+l1.String())
	if resp.StatusCode != 200 || int64(len(body)) != size {
		t.Errorf("GET after the HEAD = %d, %d bytes; want 200, %d", resp.StatusCode, len(body), size)
	}
	m.Settle()
	if _, err := st.StatBlob(context.Background(), "docker.io/library/app", digest.Digest(l1.String())); err != nil {
		t.Errorf("the GET did not cache the blob: %v", err)
	}
}

// TestClientLeavesMidBlob: a client that disconnects mid-blob does not
// stop the fetch: the blob ends up cached.
func TestClientLeavesMidBlob(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:1", 8<<20, 1)
	srv, st := newMirror(t, hub(up))
	ld := layerDigest(t, img, 0)
	resp, err := http.Get(srv.URL + "/v2/docker.io/library/app/blobs/" + ld.String())
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 1024))
	resp.Body.Close() // leaves mid-blob
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := st.StatBlob(context.Background(), "docker.io/library/app", digest.Digest(ld.String()))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("blob not cached 10s after its client left: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := up.blobGets.Load(); n != 1 {
		t.Errorf("upstream blob GETs = %d, want 1", n)
	}
}

// TestIndexNotExpanded: an index is cached alone; a platform's manifest
// is fetched when a client asks for it.
func TestIndexNotExpanded(t *testing.T) {
	up := newGGCRUpstream(t)
	idx, err := random.Index(1024, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(mustRef(t, up.host+"/library/multi:1"), idx); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	srv, st := newMirror(t, hub(up))
	resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/multi/manifests/1", "Accept", "application/vnd.oci.image.index.v1+json")
	if d, _ := idx.Digest(); resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("GET index = %d %s, want 200 with digest %s", resp.StatusCode, body, d)
	}
	child := im.Manifests[0].Digest.String()
	if _, err := st.StatManifest(context.Background(), "docker.io/library/multi", child); err == nil {
		t.Errorf("GET of the index cached its platform manifest %s", child)
	}
	if resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/multi/manifests/"+child, "Accept", manifestAccept); resp.StatusCode != 200 {
		t.Errorf("GET platform manifest = %d %s, want 200", resp.StatusCode, body)
	}
}

// TestGCKeepsCachedContent: cached manifests carry their references, so
// GC, even with no grace, keeps the cached blobs of a cached tag, and an
// offline pull still works afterwards.
func TestGCKeepsCachedContent(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:1", 1024, 2)
	// An index whose children are pulled by digest, as clients do.
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	if err := remote.WriteIndex(mustRef(t, up.host+"/library/app:multi"), idx); err != nil {
		t.Fatal(err)
	}
	srv, st := newMirror(t, hub(up))
	host := strings.TrimPrefix(srv.URL, "http://")
	if _, err := pull(t, host+"/docker.io/library/app:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Index(mustRef(t, host+"/docker.io/library/app:multi")); err != nil {
		t.Fatal(err)
	}
	if _, err := pull(t, host+"/docker.io/library/app:multi"); err != nil {
		t.Fatal(err)
	}
	opts := gc.Options{Grace: 0, DeleteUntagged: true}
	p, err := gc.Plan(context.Background(), st, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gc.Apply(context.Background(), st, p); err != nil {
		t.Fatal(err)
	}
	up.Close()
	for _, ref := range []string{"1", "multi"} {
		if got, err := pull(t, host+"/docker.io/library/app:"+ref); err != nil || got != digestOf(t, img) {
			t.Errorf("offline pull of app:%s after GC = %v, %v; want %v", ref, got, err, digestOf(t, img))
		}
	}
}

// TestTagList: a mirrored repository's tags are the upstream's, paginated
// as asked; with the upstream down, they are the cached ones.
func TestTagList(t *testing.T) {
	up := newGGCRUpstream(t)
	for _, tag := range []string{"1", "2", "3"} {
		push(t, up.host+"/library/app:"+tag, 512, 1)
	}
	srv, _ := newMirror(t, hub(up))
	if resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/app/manifests/2", "Accept", manifestAccept); resp.StatusCode != 200 {
		t.Fatalf("GET app:2 = %d %s", resp.StatusCode, body)
	}
	for _, c := range []struct {
		query, want, link string
	}{
		{"", `{"name":"docker.io/library/app","tags":["1","2","3"]}`, ""},
		{"?n=2", `{"name":"docker.io/library/app","tags":["1","2"]}`, `</v2/docker.io/library/app/tags/list?last=2&n=2>; rel="next"`},
		{"?n=2&last=2", `{"name":"docker.io/library/app","tags":["3"]}`, ""},
	} {
		resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/app/tags/list"+c.query)
		if resp.StatusCode != 200 || string(body) != c.want || resp.Header.Get("Link") != c.link {
			t.Errorf("GET tags/list%s = %d %s (Link %q), want %s (Link %q)", c.query, resp.StatusCode, body, resp.Header.Get("Link"), c.want, c.link)
		}
	}
	up.mode.Store(down)
	resp, body := get(t, "GET", srv.URL+"/v2/library/app/tags/list?ns=docker.io")
	if want := `{"name":"docker.io/library/app","tags":["2"]}`; resp.StatusCode != 200 || string(body) != want {
		t.Errorf("GET tags/list with the upstream down = %d %s, want the cached %s", resp.StatusCode, body, want)
	}
	if resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/none/tags/list"); resp.StatusCode != 404 || !strings.Contains(string(body), "NAME_UNKNOWN") {
		t.Errorf("GET tags/list of nothing with the upstream down = %d %s, want 404 NAME_UNKNOWN", resp.StatusCode, body)
	}
}

// TestStalledUpstreamBlob: a blob fetch that stops receiving bytes is cut
// after the idle timeout; nothing is cached and the client's transfer
// fails; once the upstream moves again, the pull works.
func TestStalledUpstreamBlob(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:1", 256<<10, 1)
	u := hub(up)
	u.BlobIdleTimeout = "300ms"
	srv, st := newMirror(t, u)
	ld := layerDigest(t, img, 0)
	up.mode.Store(stall)
	start := time.Now()
	// The cut may come before the buffered status line went out.
	if resp, err := http.Get(srv.URL + "/v2/docker.io/library/app/blobs/" + ld.String()); err == nil {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && err == nil {
			t.Errorf("GET of a stalled blob = 200, %d whole bytes; want the transfer cut", len(body))
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("GET of a stalled blob took %v, want it cut after the 300ms idle timeout", took)
	}
	if _, err := st.StatBlob(context.Background(), "docker.io/library/app", digest.Digest(ld.String())); err == nil {
		t.Errorf("a stalled blob was cached")
	}
	up.mode.Store(healthy)
	if got, err := pull(t, strings.TrimPrefix(srv.URL, "http://")+"/docker.io/library/app:1"); err != nil || got != digestOf(t, img) {
		t.Errorf("pull after the stall = %v, %v; want %v", got, err, digestOf(t, img))
	}
}
