package mirror_test

import (
	"context"
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nora-registry/nora/mirror"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// pushReferrers pushes app:1 to host and, by digest, one artifact of each
// of artifactTypes whose subject it is; it returns the subject's digest and the
// artifacts' digests.
func pushReferrers(t *testing.T, host string, artifactTypes ...string) (v1.Hash, []v1.Hash) {
	t.Helper()
	img := push(t, host+"/library/app:1", 512, 1)
	desc, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	var arts []v1.Hash
	for _, at := range artifactTypes {
		a := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		a = mutate.ConfigMediaType(a, types.MediaType(at))
		a = mutate.Subject(a, *desc).(v1.Image)
		d := digestOf(t, a)
		if err := remote.Write(mustRef(t, host+"/library/app@"+d.String()), a); err != nil {
			t.Fatal(err)
		}
		arts = append(arts, d)
	}
	return digestOf(t, img), arts
}

// referrerDigests GETs a referrers URL and returns the status, the
// OCI-Filters-Applied header and the listed digests.
func referrerDigests(t *testing.T, url string) (int, string, []string) {
	t.Helper()
	resp, body := get(t, "GET", url)
	var idx v1.IndexManifest
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &idx); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, body)
		}
	}
	var ds []string
	for _, m := range idx.Manifests {
		ds = append(ds, m.Digest.String())
	}
	return resp.StatusCode, resp.Header.Get("OCI-Filters-Applied"), ds
}

// TestReferrers: referrers of a mirrored repository come from upstream,
// filter and all, with nothing cached; with the upstream down, or with an
// upstream without the referrers API, the cache answers with the
// referrers pulled through it.
func TestReferrers(t *testing.T) {
	st, err := storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	up := newUpstream(t, registry.New(st))
	subj, arts := pushReferrers(t, up.host, "application/vnd.example.sig", "application/vnd.example.sbom")
	plain := newGGCRUpstream(t) // no referrers API: 404
	psubj, parts := pushReferrers(t, plain.host, "application/vnd.example.sig")
	srv, _ := newMirror(t, hub(up), mirror.Upstream{Name: "plain", URL: plain.URL, Insecure: true, Hosts: []string{"ghcr.io"}})
	base := srv.URL + "/v2/docker.io/library/app/referrers/" + subj.String()

	if code, _, ds := referrerDigests(t, base); code != 200 || len(ds) != 2 {
		t.Errorf("GET referrers, nothing cached = %d %v, want the upstream's 2", code, ds)
	}
	code, filters, ds := referrerDigests(t, base+"?artifactType=application/vnd.example.sbom")
	if code != 200 || filters != "artifactType" || len(ds) != 1 || ds[0] != arts[1].String() {
		t.Errorf("GET referrers of the sbom type = %d %q %v, want %s filtered upstream", code, filters, ds, arts[1])
	}

	if resp, body := get(t, "GET", srv.URL+"/v2/docker.io/library/app/manifests/"+arts[0].String(), "Accept", manifestAccept); resp.StatusCode != 200 {
		t.Fatalf("GET the sig = %d %s", resp.StatusCode, body)
	}
	up.mode.Store(down)
	if code, _, ds := referrerDigests(t, base); code != 200 || len(ds) != 1 || ds[0] != arts[0].String() {
		t.Errorf("GET referrers with the upstream down = %d %v, want the cached %s", code, ds, arts[0])
	}

	pbase := srv.URL + "/v2/ghcr.io/library/app/referrers/" + psubj.String()
	if code, _, ds := referrerDigests(t, pbase); code != 200 || len(ds) != 0 {
		t.Errorf("GET referrers without the API upstream, nothing cached = %d %v, want an empty index", code, ds)
	}
	if resp, body := get(t, "GET", srv.URL+"/v2/ghcr.io/library/app/manifests/"+parts[0].String(), "Accept", manifestAccept); resp.StatusCode != 200 {
		t.Fatalf("GET the sig = %d %s", resp.StatusCode, body)
	}
	if code, _, ds := referrerDigests(t, pbase); code != 200 || len(ds) != 1 || ds[0] != parts[0].String() {
		t.Errorf("GET referrers without the API upstream = %d %v, want the cached %s", code, ds, parts[0])
	}
}
