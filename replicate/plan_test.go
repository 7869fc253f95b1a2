package replicate

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// endpoint is the registry served at url, anonymously.
func endpoint(t *testing.T, url string) Endpoint {
	t.Helper()
	reg, _, err := ParseRemote(url)
	if err != nil {
		t.Fatal(err)
	}
	return Endpoint{Registry: reg, Auth: authn.Anonymous}
}

func put(t *testing.T, e Endpoint, ref string, tg remote.Taggable) {
	t.Helper()
	r, err := name.ParseReference(e.Registry.Name()+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	switch v := tg.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(r, v)
	case v1.Image:
		err = remote.Write(r, v)
	}
	if err != nil {
		t.Fatalf("writing %s: %v", ref, err)
	}
}

// artifact is a small signature-like artifact; with a subject unless
// subject is nil, as cosign's tagged signatures are.
func artifact(t *testing.T, payload string, subject *v1.Descriptor) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), "application/vnd.example.sig")
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer([]byte(payload), "application/vnd.example.payload")})
	if err != nil {
		t.Fatal(err)
	}
	if subject == nil {
		return img
	}
	return mutate.Subject(img, *subject).(v1.Image)
}

// TestPlanAndApply plans a copy from this project's registry to
// go-containerregistry's: only what the target lacks is planned, in an
// order the target accepts, and a second plan after the copy finds
// everything in place without asking about a single blob.
func TestPlanAndApply(t *testing.T) {
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srcSrv := httptest.NewServer(registry.New(st))
	defer srcSrv.Close()
	var blobCalls atomic.Int64
	target := ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0)))
	dstSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") {
			blobCalls.Add(1)
		}
		target.ServeHTTP(w, r)
	}))
	defer dstSrv.Close()
	src, dst := endpoint(t, srcSrv.URL), endpoint(t, dstSrv.URL)

	one, _ := random.Image(1024, 2)
	two, _ := random.Image(1024, 2)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: one}, mutate.IndexAddendum{Add: two})
	put(t, src, "team/app:v1", idx)
	id, _ := idx.Digest()
	sig := artifact(t, "signed", &v1.Descriptor{MediaType: types.OCIImageIndex, Digest: id})
	sd, _ := sig.Digest()
	put(t, src, "team/app@"+sd.String(), sig)
	put(t, src, "team/app:sha256-"+id.Hex+".sig", artifact(t, "cosign", nil))
	d1, _ := one.Digest()
	put(t, dst, "mirror/team/app@"+d1.String(), one) // the target has one platform already

	sel, _ := NewSelection([]string{"team/**"}, []string{"v1"})
	job := Job{From: src, To: dst, Select: sel, Prefix: "mirror"}
	items, err := Plan(ctx, job)
	if err != nil || len(items) != 1 {
		t.Fatalf("Plan = %d items, %v; want 1", len(items), err)
	}
	it := items[0]
	if it.Err != nil || it.Target != "mirror/team/app" || it.Digest != id {
		t.Fatalf("Plan item = %+v", it)
	}
	var refs []string
	for _, m := range it.Manifests {
		refs = append(refs, m.Ref)
	}
	d2, _ := two.Digest()
	want := []string{d2.String(), "v1", sd.String(), "sha256-" + id.Hex + ".sig"}
	if !slices.Equal(refs, want) {
		t.Errorf("Plan manifests = %v, want %v (children before the index, referrers after it)", refs, want)
	}
	l1, _ := one.Layers()
	for _, b := range it.Blobs {
		for _, l := range l1 {
			if ld, _ := l.Digest(); ld == b.Digest {
				t.Errorf("Plan blobs hold %s, which the target has", b.Digest)
			}
		}
	}

	results := Apply(ctx, job, items, NewLines(io.Discard))
	if len(results) != 1 || results[0].Status != Copied || results[0].Bytes < it.Bytes()/2 {
		t.Fatalf("Apply = %+v, want copied", results)
	}
	if err := Failures(results); err != nil {
		t.Fatalf("Failures = %v", err)
	}

	blobCalls.Store(0)
	again, err := Plan(ctx, job)
	if err != nil || len(again) != 1 || !again[0].UpToDate() {
		t.Fatalf("Plan after Apply = %+v, %v; want up to date", again[0], err)
	}
	if n := blobCalls.Load(); n != 0 {
		t.Errorf("Plan after Apply made %d blob requests, want 0", n)
	}
}
