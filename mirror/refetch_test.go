package mirror_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestManifestNotFetchedTwice: a client whose look in the cache missed a
// tag just before another client's fetch of it ended gets the manifest
// that fetch stored, without asking upstream again. Among 50 clients
// pulling one cold image at once, one such client fetched the manifest a
// second time now and then.
func TestManifestNotFetchedTwice(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:v1", 16<<10, 1)
	srv, _, m := newMirrorWith(t, nil, hub(up))
	host := strings.TrimPrefix(srv.URL, "http://")
	if got, err := pull(t, host+"/docker.io/library/app:v1"); err != nil || got != digestOf(t, img) {
		t.Fatalf("pull = %v, %v; want %v", got, err, digestOf(t, img))
	}
	rt, ok := m.Route(t.Context(), "docker.io/library/app", "", true)
	if !ok {
		t.Fatal("no route for docker.io/library/app")
	}
	before := up.manifestReqs.Load()
	man, err := m.FetchManifestAfterMiss(t.Context(), rt, "v1")
	if err != nil || man.Digest.String() != digestOf(t, img).String() {
		t.Fatalf("manifest after a miss = %v, %v; want %v", man.Digest, err, digestOf(t, img))
	}
	if n := up.manifestReqs.Load() - before; n != 0 {
		t.Errorf("upstream manifest requests for a tag another fetch just stored = %d, want 0", n)
	}
}

// TestBlobNotFetchedTwice: a client whose look in the cache missed a blob
// just before another client's fetch of it ended gets the blob that fetch
// stored, without asking upstream again. Among 50 clients pulling one cold
// image at once (TestE2EMirrorFaultConcurrent, on S3, whose commit takes
// longest), one such client fetched a layer a second time.
func TestBlobNotFetchedTwice(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:v1", 16<<10, 1)
	srv, _, m := newMirrorWith(t, nil, hub(up))
	host := strings.TrimPrefix(srv.URL, "http://")
	if _, err := pull(t, host+"/docker.io/library/app:v1"); err != nil {
		t.Fatal(err)
	}
	m.Settle()
	rt, ok := m.Route(t.Context(), "docker.io/library/app", "", true)
	if !ok {
		t.Fatal("no route for docker.io/library/app")
	}
	d := digest.Digest(layerDigest(t, img, 0).String())
	before := up.blobGets.Load()
	var body bytes.Buffer
	sent, err := m.Blob(t.Context(), rt, d, func(int64) io.Writer { return &body })
	if err != nil || sent {
		t.Fatalf("Blob after a miss = sent %v, %v; want the cached blob left to the caller", sent, err)
	}
	if n := up.blobGets.Load() - before; n != 0 {
		t.Errorf("upstream GETs of a blob another fetch just stored = %d, want 0", n)
	}
}
