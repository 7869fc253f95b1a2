package mirror_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nora-registry/nora/storage"
)

// TestTagDeletedUpstream: a cached tag the upstream answers
// MANIFEST_UNKNOWN for is gone: 404, and the cached tag is deleted while
// its manifest is still served by digest. A bare 404 (no error code, as
// from a proxy in the way) is a failure: the cached tag is served stale.
func TestTagDeletedUpstream(t *testing.T) {
	ctx := context.Background()
	inner := newGGCRUpstream(t)
	var bare404 atomic.Bool
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bare404.Load() && strings.Contains(r.URL.Path, "/manifests/") {
			http.NotFound(w, r)
			return
		}
		inner.Config.Handler.ServeHTTP(w, r)
	}))
	img := push(t, up.host+"/library/app:1", 1024, 1)
	push(t, up.host+"/library/app:2", 1024, 1)
	u := hub(up)
	u.Revalidate = "0s"
	srv, st := newMirror(t, u)
	manifest := func(ref string) (*http.Response, []byte) {
		return get(t, "GET", srv.URL+"/v2/docker.io/library/app/manifests/"+ref, "Accept", manifestAccept)
	}
	for _, tag := range []string{"1", "2"} {
		if resp, body := manifest(tag); resp.StatusCode != 200 {
			t.Fatalf("GET app:%s = %d %s, want 200", tag, resp.StatusCode, body)
		}
	}

	if err := remote.Delete(mustRef(t, up.host+"/library/app:1")); err != nil {
		t.Fatal(err)
	}
	if resp, body := manifest("1"); resp.StatusCode != 404 || !strings.Contains(string(body), "MANIFEST_UNKNOWN") {
		t.Errorf("GET app:1 deleted upstream = %d %s (Warning %q), want 404 MANIFEST_UNKNOWN", resp.StatusCode, body, resp.Header.Get("Warning"))
	}
	if _, err := st.GetManifest(ctx, "docker.io/library/app", "1"); !errors.Is(err, storage.ErrManifestNotFound) {
		t.Errorf("cached tag app:1 after its deletion upstream: GetManifest = %v, want ErrManifestNotFound", err)
	}
	d := digestOf(t, img).String()
	if resp, body := manifest(d); resp.StatusCode != 200 {
		t.Errorf("GET app@%s after its tag's deletion upstream = %d %s, want 200 from the cache", d, resp.StatusCode, body)
	}

	bare404.Store(true)
	if resp, body := manifest("2"); resp.StatusCode != 200 || resp.Header.Get("Warning") == "" {
		t.Errorf("GET app:2 with a bare upstream 404 = %d %s (Warning %q), want 200 stale", resp.StatusCode, body, resp.Header.Get("Warning"))
	}
	if _, err := st.GetManifest(ctx, "docker.io/library/app", "2"); err != nil {
		t.Errorf("cached tag app:2 after a bare upstream 404: GetManifest = %v, want it kept", err)
	}
}
