package mirror_test

import (
	"strings"
	"testing"
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
