package mirror_test

import (
	"testing"

	"github.com/nora-registry/nora/mirror"
)

// TestTagCheckSurvivesRestart: a tag checked within revalidate is served
// with no upstream request after the store and the mirror are reopened
// on the same directory; the time of that check was kept in metadata.
func TestTagCheckSurvivesRestart(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:1", 1024, 1)
	u := hub(up)
	u.Revalidate = "1h"
	cfg, root := mirror.Config{Upstreams: []mirror.Upstream{u}}, t.TempDir()

	srv, _, _, stop := startMirror(t, root, cfg)
	resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/app/manifests/1", "Accept", manifestAccept)
	stop()
	if resp.StatusCode != 200 {
		t.Fatalf("GET app:1 = %d %s, want 200", resp.StatusCode, body)
	}

	srv, _, _, stop = startMirror(t, root, cfg)
	defer stop()
	n := up.manifestReqs.Load()
	resp, body = get(t, "GET", srv.URL+"/v2/docker.io/library/app/manifests/1", "Accept", manifestAccept)
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != digestOf(t, img).String() {
		t.Fatalf("GET app:1 after a restart = %d %s, want 200 with %s", resp.StatusCode, body, digestOf(t, img))
	}
	if got := up.manifestReqs.Load() - n; got != 0 {
		t.Errorf("GET app:1 after a restart made %d upstream manifest requests, want 0 within revalidate", got)
	}
}
