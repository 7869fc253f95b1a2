package mirror_test

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// TestReuseHeldBlob: a blob the cache holds for one repository is linked
// into another once a HEAD upstream shows that one has it, not downloaded
// again; with the upstream down it is 503, and a blob only a local
// repository holds is not served through a mirrored name whose upstream
// lacks it.
func TestReuseHeldBlob(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/one:1", 64<<10, 1)
	for _, repo := range []string{"two", "three"} {
		if err := remote.Write(mustRef(t, up.host+"/library/"+repo+":1"), img); err != nil {
			t.Fatal(err)
		}
	}
	srv, _ := newMirror(t, hub(up))
	host := strings.TrimPrefix(srv.URL, "http://")
	if _, err := pull(t, host+"/docker.io/library/one:1"); err != nil {
		t.Fatal(err)
	}
	d := layerDigest(t, img, 0).String()
	gets := up.blobGets.Load()
	resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/two/blobs/"+d)
	if resp.StatusCode != 200 || digest.FromBytes(body).String() != d {
		t.Errorf("GET of a held blob through another repository = %d, %s; want 200, %s", resp.StatusCode, digest.FromBytes(body).String(), d)
	}
	if n := up.blobGets.Load() - gets; n != 0 {
		t.Errorf("upstream blob GETs for a held blob = %d, want 0", n)
	}

	up.mode.Store(down)
	if resp, _ := get(t, "GET", srv.URL+"/v2/docker.io/library/three/blobs/"+d); resp.StatusCode != 503 {
		t.Errorf("GET of a held blob through another repository, upstream down = %d, want 503", resp.StatusCode)
	}
	up.mode.Store(healthy)

	local := push(t, host+"/local/app:1", 4096, 1)
	ld := layerDigest(t, local, 0).String()
	if resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/two/blobs/"+ld); resp.StatusCode != 404 || !strings.Contains(string(body), "BLOB_UNKNOWN") {
		t.Errorf("GET through a mirrored name of a blob only a local repository holds = %d %s, want 404 BLOB_UNKNOWN", resp.StatusCode, body)
	}
}
