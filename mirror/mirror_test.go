package mirror_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

const manifestAccept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

// TestColdThenOfflinePull: a cold pull through the path prefix is served
// and cached; with the upstream gone, the same pull, tag included, is
// served from the cache.
func TestColdThenOfflinePull(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/nginx:latest", 64<<10, 2)
	srv, _ := newMirror(t, hub(up))
	host := strings.TrimPrefix(srv.URL, "http://")

	// One-segment name under docker.io gains library/.
	for _, ref := range []string{host + "/docker.io/library/nginx:latest", host + "/docker.io/nginx:latest"} {
		got, err := pull(t, ref)
		if err != nil || got != digestOf(t, img) {
			t.Fatalf("pull(%s) = %v, %v; want %v", ref, got, err, digestOf(t, img))
		}
	}
	up.Close()
	for _, ref := range []string{host + "/docker.io/library/nginx:latest", host + "/index.docker.io/library/nginx@" + digestOf(t, img).String()} {
		if got, err := pull(t, ref); err != nil || got != digestOf(t, img) {
			t.Errorf("pull(%s) with the upstream gone = %v, %v; want %v from the cache", ref, got, err, digestOf(t, img))
		}
	}
}

// TestNamespaceParameter: containerd's ?ns= routes a name without a host
// prefix; an ns naming no configured upstream is served locally.
func TestNamespaceParameter(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/busybox:1", 1024, 1)
	srv, st := newMirror(t, hub(up))
	resp, body := get(t, "GET", srv.URL+"/v2/library/busybox/manifests/1?ns=docker.io", "Accept", manifestAccept)
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != digestOf(t, img).String() {
		t.Fatalf("GET manifest ?ns=docker.io = %d %s, want 200 with digest %s", resp.StatusCode, body, digestOf(t, img))
	}
	ld := layerDigest(t, img, 0)
	resp, body = get(t, "GET", srv.URL+"/v2/library/busybox/blobs/"+ld.String()+"?ns=docker.io")
	if resp.StatusCode != 200 || digest.FromBytes(body).String() != ld.String() {
		t.Fatalf("GET blob ?ns=docker.io = %d, %d bytes; want 200 and the layer", resp.StatusCode, len(body))
	}
	if _, err := st.GetManifest(context.Background(), "docker.io/library/busybox", "1"); err != nil {
		t.Errorf("cache holds no docker.io/library/busybox:1: %v", err)
	}
	n := up.manifestReqs.Load()
	for _, ns := range []string{"evil.example.com", "127.0.0.1:1"} {
		resp, body = get(t, "GET", srv.URL+"/v2/library/busybox/manifests/1?ns="+ns, "Accept", manifestAccept)
		if resp.StatusCode != 404 {
			t.Errorf("GET manifest ?ns=%s = %d %s, want 404: served locally", ns, resp.StatusCode, body)
		}
	}
	if got := up.manifestReqs.Load(); got != n {
		t.Errorf("unconfigured ns made %d upstream requests, want none", got-n)
	}
}

// TestTagRevalidation: within the interval a tag is served without an
// upstream request; after it, a moved tag is fetched anew.
func TestTagRevalidation(t *testing.T) {
	up := newGGCRUpstream(t)
	first := push(t, up.host+"/library/app:stable", 1024, 1)
	cached := hub(up)
	cached.Revalidate = "1h"
	srvCached, _ := newMirror(t, cached)
	always := hub(up)
	always.Name, always.Revalidate = "hub-always", "0s"
	srvAlways, _ := newMirror(t, always)
	for _, srv := range []string{srvCached.URL, srvAlways.URL} {
		if got, err := pull(t, strings.TrimPrefix(srv, "http://")+"/docker.io/library/app:stable"); err != nil || got != digestOf(t, first) {
			t.Fatalf("cold pull = %v, %v; want %v", got, err, digestOf(t, first))
		}
	}
	second := push(t, up.host+"/library/app:stable", 1024, 1)

	n := up.manifestReqs.Load()
	if got, err := pull(t, strings.TrimPrefix(srvCached.URL, "http://")+"/docker.io/library/app:stable"); err != nil || got != digestOf(t, first) {
		t.Errorf("pull within revalidate = %v, %v; want the cached %v", got, err, digestOf(t, first))
	}
	if got := up.manifestReqs.Load(); got != n {
		t.Errorf("pull within revalidate made %d upstream manifest requests, want 0", got-n)
	}
	if got, err := pull(t, strings.TrimPrefix(srvAlways.URL, "http://")+"/docker.io/library/app:stable"); err != nil || got != digestOf(t, second) {
		t.Errorf("pull after revalidate = %v, %v; want the moved tag's %v", got, err, digestOf(t, second))
	}
}

// TestUpstreamFailures: a cached tag is served stale, with a Warning, when
// the upstream answers 5xx or 429, and for a while after that without
// asking it again; an uncached one is UNAVAILABLE; a 404 upstream is
// MANIFEST_UNKNOWN.
func TestUpstreamFailures(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode int32
	}{{"503", down}, {"429", tooMany}} {
		t.Run(mode.name, func(t *testing.T) {
			up := newGGCRUpstream(t)
			img := push(t, up.host+"/library/app:1", 1024, 1)
			u := hub(up)
			u.Revalidate = "0s"
			srv, _ := newMirror(t, u)
			base := srv.URL + "/v2/docker.io/library/app/manifests/"

			resp, body := get(t, "GET", base+"nope", "Accept", manifestAccept)
			if resp.StatusCode != 404 || !strings.Contains(string(body), "MANIFEST_UNKNOWN") {
				t.Errorf("GET a tag upstream lacks = %d %s, want 404 MANIFEST_UNKNOWN", resp.StatusCode, body)
			}
			if resp, body = get(t, "GET", base+"1", "Accept", manifestAccept); resp.StatusCode != 200 || resp.Header.Get("Warning") != "" {
				t.Fatalf("cold GET = %d %s (Warning %q), want 200 without Warning", resp.StatusCode, body, resp.Header.Get("Warning"))
			}
			up.mode.Store(mode.mode)
			asked := up.requests()
			for _, method := range []string{"GET", "HEAD", "GET"} {
				resp, _ = get(t, method, base+"1", "Accept", manifestAccept)
				if resp.StatusCode != 200 || resp.Header.Get("Warning") != `110 - "response is stale"` ||
					resp.Header.Get("Docker-Content-Digest") != digestOf(t, img).String() {
					t.Errorf("%s with upstream %s = %d, Warning %q, digest %s; want 200, the stale warning, %s", method, mode.name, resp.StatusCode,
						resp.Header.Get("Warning"), resp.Header.Get("Docker-Content-Digest"), digestOf(t, img))
				}
			}
			if n := up.requests() - asked; n != 1 {
				t.Errorf("3 stale pulls in a row asked upstream %d times, want 1", n)
			}
			resp, body = get(t, "GET", base+"2", "Accept", manifestAccept)
			if resp.StatusCode != 503 || !strings.Contains(string(body), "UNAVAILABLE") || strings.Contains(string(body), up.host) {
				t.Errorf("GET an uncached tag with upstream %s = %d %s, want 503 UNAVAILABLE not naming the upstream", mode.name, resp.StatusCode, body)
			}
		})
	}
}

// TestCorruptUpstream: a blob whose bytes do not match its digest is not
// cached and the client's pull fails; once the upstream is repaired the
// pull works.
func TestCorruptUpstream(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:1", 256<<10, 1)
	srv, st := newMirror(t, hub(up))
	ref := strings.TrimPrefix(srv.URL, "http://") + "/docker.io/library/app:1"
	ld := layerDigest(t, img, 0)

	up.mode.Store(corrupt)
	if _, err := pull(t, ref); err == nil {
		t.Fatal("pull of corrupt upstream bytes succeeded, want an error")
	}
	// A follower of a fetch already failing gets 503; a leader's transfer
	// is cut before its last byte.
	if resp, err := http.Get(srv.URL + "/v2/docker.io/library/app/blobs/" + ld.String()); err == nil {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && err == nil {
			t.Errorf("plain GET of a corrupt blob = 200, %d whole bytes; want the transfer cut", len(body))
		}
	}
	if _, err := st.StatBlob(context.Background(), "docker.io/library/app", digest.Digest(ld.String())); err == nil {
		t.Errorf("corrupt blob %s was cached", ld)
	}
	up.mode.Store(healthy)
	if got, err := pull(t, ref); err != nil || got != digestOf(t, img) {
		t.Errorf("pull after repair = %v, %v; want %v", got, err, digestOf(t, img))
	}
}

// TestPushIntoMirroredName: pushes into mirrored names are DENIED unless
// the upstream allows them; other names stay pushable with a default
// upstream configured.
func TestPushIntoMirroredName(t *testing.T) {
	up := newGGCRUpstream(t)
	u := hub(up)
	u.Default = true
	srv, _ := newMirror(t, u)
	for _, path := range []string{"/v2/docker.io/library/x/blobs/uploads/", "/v2/library/x/blobs/uploads/?ns=docker.io"} {
		resp, body := get(t, "POST", srv.URL+path)
		if resp.StatusCode != 403 || !strings.Contains(string(body), "DENIED") {
			t.Errorf("POST %s = %d %s, want 403 DENIED", path, resp.StatusCode, body)
		}
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	push(t, host+"/team/app:1", 1024, 1)
	if _, err := pull(t, host+"/team/app:1"); err != nil {
		t.Errorf("pull of a local repository with a default upstream: %v", err)
	}

	u.AllowPush, u.Default = true, false
	srv2, _ := newMirror(t, u)
	if resp, body := get(t, "POST", srv2.URL+"/v2/docker.io/library/x/blobs/uploads/"); resp.StatusCode != 202 {
		t.Errorf("POST with allow_push = %d %s, want 202", resp.StatusCode, body)
	}
}

// TestDefaultUpstream: a name with no prefix and no ns goes to the default
// upstream unless it is a local repository.
func TestDefaultUpstream(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/redis:7", 1024, 1)
	u := hub(up)
	u.Default = true
	srv, _ := newMirror(t, u)
	host := strings.TrimPrefix(srv.URL, "http://")
	if got, err := pull(t, host+"/redis:7"); err != nil || got != digestOf(t, img) {
		t.Errorf("pull redis:7 via the default upstream = %v, %v; want %v", got, err, digestOf(t, img))
	}
}

// TestConcurrentColdBlob: many clients asking for one cold blob cause one
// upstream GET, and each gets the whole blob.
func TestConcurrentColdBlob(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/big:1", 4<<20, 1)
	srv, _ := newMirror(t, hub(up))
	ld := layerDigest(t, img, 0)
	up.blobGets.Store(0)
	url := srv.URL + "/v2/docker.io/library/big/blobs/" + ld.String()

	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for range 20 {
		wg.Go(func() {
			resp, err := http.Get(url)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			h := digest.SHA256.Digester()
			if _, err := copyAll(h.Hash(), resp); err != nil || h.Digest().String() != ld.String() {
				errs <- "status " + resp.Status + ", digest " + h.Digest().String()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent GET: %s", e)
	}
	if n := up.blobGets.Load(); n != 1 {
		t.Errorf("20 concurrent cold GETs made %d upstream blob GETs, want 1", n)
	}
}

// TestTokenUpstream: an upstream with token auth (this registry's own) is
// pulled with the upstream's configured credentials; the client's own
// Authorization is never forwarded.
func TestTokenUpstream(t *testing.T) {
	up := newAuthUpstream(t)
	img := push(t, up.host+"/library/secure:1", 1024, 1, remote.WithAuth(upstreamUser))
	u := hub(up)
	u.Username, u.Password = "mirror", "mirror-pw"
	srv, _ := newMirror(t, u)
	clientAuth := "Basic Y2xpZW50OnNlY3JldA==" // client:secret
	resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/secure/manifests/1", "Accept", manifestAccept, "Authorization", clientAuth)
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != digestOf(t, img).String() {
		t.Fatalf("GET through a token upstream = %d %s, want 200", resp.StatusCode, body)
	}
	if got, err := pull(t, strings.TrimPrefix(srv.URL, "http://")+"/docker.io/library/secure:1"); err != nil || got != digestOf(t, img) {
		t.Errorf("pull through a token upstream = %v, %v", got, err)
	}
	if !up.sawAuthPrefix("Bearer ") {
		t.Errorf("the upstream saw no Bearer token: the token flow did not run")
	}
	if up.sawAuthPrefix(clientAuth) {
		t.Errorf("the client's Authorization header reached the upstream")
	}
}
