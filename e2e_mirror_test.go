package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestE2EMirror runs the registry as a pull-through cache of another
// registry process with token auth on: go-containerregistry and crane
// pull through the host prefix, a containerd-style ?ns= request resolves
// the tag, and once the upstream is stopped and the cache restarted (so
// it remembers no revalidation), the same pulls still work from the cache.
func TestE2EMirror(t *testing.T) {
	up := startAuthServer(t)
	img := ociImage(t)
	want := digestOf(t, img).String()
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})
	if err := remote.Write(up.ref(t, "team/app:v1"), img, alice); err != nil {
		t.Fatal(err)
	}
	cache := startServerWith(t, fmt.Sprintf(`
[[mirror.upstreams]]
name = "upstream"
url = "http://%s"
insecure = true
hosts = ["registry.example"]
username = "bob"
password = "bob-secret"
`, up.host()))

	pullWhole(t, cache.ref(t, "registry.example/team/app:v1"), img)
	_, crane := craneClient(t)
	resolve := func() *http.Response {
		req, _ := http.NewRequest("HEAD", cache.url("/v2/team/app/manifests/v1?ns=registry.example"), nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != 200 || got != want {
			t.Errorf("HEAD team/app:v1?ns=registry.example = %d %s, want 200 %s", resp.StatusCode, got, want)
		}
		return resp
	}
	resolve()
	if got := strings.TrimSpace(crane("digest", cache.host()+"/registry.example/team/app:v1")); got != want {
		t.Errorf("crane digest through the cache = %s, want %s", got, want)
	}

	up.stop()
	cache.restart()
	pullWhole(t, cache.ref(t, "registry.example/team/app:v1"), img)
	if w := resolve().Header.Get("Warning"); !strings.Contains(w, "response is stale") {
		t.Errorf("HEAD with the upstream gone: Warning %q, want the stale warning", w)
	}
	if got := strings.TrimSpace(crane("digest", cache.host()+"/registry.example/team/app:v1")); got != want {
		t.Errorf("crane digest with the upstream gone = %s, want %s", got, want)
	}
	resp, _ := cache.do(t, "GET", "/v2/registry.example/team/app/manifests/v2", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET of an uncached tag with the upstream gone = %d, want 503", resp.StatusCode)
	}
}
