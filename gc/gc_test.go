package gc

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nora-registry/nora/storage"
)

func openStore(t testing.TB) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatalf("storage.Open = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func putBlob(t testing.TB, s *storage.Store, repo string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	if _, err := s.PutBlob(t.Context(), repo, d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatalf("PutBlob(%s) = %v", repo, err)
	}
	return d
}

func putManifest(t testing.TB, s *storage.Store, repo, name string, m storage.Manifest, tags ...string) storage.Manifest {
	t.Helper()
	m.Content = []byte(fmt.Sprintf(`{"schemaVersion":2,"name":%q}`, name))
	m.Digest = digest.FromBytes(m.Content)
	if m.MediaType == "" {
		m.MediaType = ocispec.MediaTypeImageManifest
	}
	if err := s.PutManifest(t.Context(), repo, m, tags); err != nil {
		t.Fatalf("PutManifest(%s, %s) = %v", repo, name, err)
	}
	return m
}

func image(t testing.TB, s *storage.Store, repo, name string, shared digest.Digest, tags ...string) storage.Manifest {
	own := putBlob(t, s, repo, []byte("layer of "+repo+"/"+name))
	return putManifest(t, s, repo, name, storage.Manifest{Blobs: []digest.Digest{shared, own}}, tags...)
}

func keys(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprintf("%s %s %s%s", it.Kind, it.Repo, it.Digest, it.Key))
	}
	slices.Sort(out)
	return out
}

// later is an Options clock past every grace period of the test.
func later(o Options) Options {
	o.Now = time.Now().Add(time.Hour)
	return o
}

func TestPlanAndApply(t *testing.T) {
	s := openStore(t)
	shared := putBlob(t, s, "app", []byte("shared base layer"))
	kept := image(t, s, "app", "kept", shared, "v1")
	gone := image(t, s, "app", "gone", shared, "v2")
	sig := putManifest(t, s, "app", "sig", storage.Manifest{Subject: gone.Digest})
	orphanSig := putManifest(t, s, "app", "orphan-sig", storage.Manifest{Subject: digest.FromString("never pushed")})
	untagged := image(t, s, "app", "untagged", shared)
	s.DeleteTag(t.Context(), "app", "v2")

	opts := Options{Grace: time.Minute, DeleteOrphanReferrers: true}
	// Within the grace period, nothing goes, and nothing is waiting
	// for it while untagged images are kept.
	p, err := Plan(t.Context(), s, opts)
	if err != nil || len(p.Items) != 0 || p.WaitingBytes != 0 {
		t.Fatalf("Plan within grace = %v, %d bytes waiting, %v, want nothing", keys(p.Items), p.WaitingBytes, err)
	}
	// With DeleteUntagged, the layers only the untagged images use wait
	// for the grace period, and then go.
	opts.DeleteUntagged = true
	p, _ = Plan(t.Context(), s, opts)
	own := int64(len("layer of app/gone") + len("layer of app/untagged"))
	if len(p.Items) != 0 || p.WaitingBytes != own {
		t.Errorf("Plan within grace = %v, %d bytes waiting, want nothing and %d waiting", keys(p.Items), p.WaitingBytes, own)
	}
	if p, _ = Plan(t.Context(), s, later(opts)); p.Bytes != own || p.WaitingBytes != 0 {
		t.Errorf("Plan past grace frees %d, %d waiting; want %d and 0", p.Bytes, p.WaitingBytes, own)
	}
	opts.DeleteUntagged = false

	// Past it, without DeleteUntagged: only the referrer of nothing.
	p, _ = Plan(t.Context(), s, later(opts))
	if got, want := keys(p.Items), []string{"manifest app " + string(orphanSig.Digest)}; !slices.Equal(got, want) {
		t.Errorf("Plan = %v, want %v", got, want)
	}

	// With it: the untagged images, their signature, their own layers.
	opts.DeleteUntagged = true
	p, _ = Plan(t.Context(), s, later(opts))
	var buf bytes.Buffer
	p.Print(&buf, false)
	var deleted []Item
	p.OnDeleted = func(it Item) { deleted = append(deleted, it) }
	res, err := Apply(t.Context(), s, p)
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	if got, want := keys(deleted), keys(p.Items); !slices.Equal(got, want) {
		t.Errorf("Apply deleted %v\nwant the plan's %v\nplan:\n%s", got, want, buf.String())
	}
	if res.Manifests != 4 || res.Blobs != 2 || res.Links != 2 || res.Skipped != 0 {
		t.Errorf("Apply = %+v, want 4 manifests, 2 links, 2 blobs", res)
	}
	for _, m := range []storage.Manifest{gone, sig, orphanSig, untagged} {
		if _, err := s.StatManifest(t.Context(), "app", string(m.Digest)); err == nil {
			t.Errorf("manifest %s still there", m.Digest)
		}
	}
	for _, d := range append([]digest.Digest{shared}, kept.Blobs...) {
		if _, err := s.StatBlob(t.Context(), "app", d); err != nil {
			t.Errorf("StatBlob(%s) of the kept image = %v", d, err)
		}
	}
	// A second pass finds nothing.
	if p, _ := Plan(t.Context(), s, later(opts)); len(p.Items) != 0 {
		t.Errorf("second Plan = %v, want nothing", keys(p.Items))
	}
}

func TestIndexKeepsChildren(t *testing.T) {
	s := openStore(t)
	shared := putBlob(t, s, "app", []byte("base"))
	child := image(t, s, "app", "amd64", shared)
	index := putManifest(t, s, "app", "index", storage.Manifest{MediaType: ocispec.MediaTypeImageIndex, Manifests: []digest.Digest{child.Digest}}, "v1")
	opts := later(Options{DeleteUntagged: true, DeleteOrphanReferrers: true})
	if p, _ := Plan(t.Context(), s, opts); len(p.Items) != 0 {
		t.Fatalf("Plan under a tagged index = %v, want nothing", keys(p.Items))
	}
	s.DeleteTag(t.Context(), "app", "v1")
	p, _ := Plan(t.Context(), s, opts)
	want := []string{
		"blob  " + string(child.Blobs[1]), "blob  " + string(shared),
		"link app " + string(child.Blobs[1]), "link app " + string(shared),
		"manifest app " + string(child.Digest), "manifest app " + string(index.Digest),
	}
	slices.Sort(want)
	if got := keys(p.Items); !slices.Equal(got, want) {
		t.Errorf("Plan once untagged = %v, want %v", got, want)
	}
}

// TestConcurrentPushWins plans a pass, then lets a push reuse what the
// plan would delete: Apply must skip it.
func TestConcurrentPushWins(t *testing.T) {
	s := openStore(t)
	layer := putBlob(t, s, "app", []byte("layer"))
	old := putManifest(t, s, "app", "old", storage.Manifest{Blobs: []digest.Digest{layer}}, "v1")
	s.DeleteManifest(t.Context(), "app", old.Digest)
	p, _ := Plan(t.Context(), s, later(Options{DeleteUntagged: true}))
	if got := keys(p.Items); len(got) != 2 {
		t.Fatalf("Plan = %v, want the link and the blob", got)
	}
	putManifest(t, s, "app", "new", storage.Manifest{Blobs: []digest.Digest{layer}}, "v2")
	deleted := 0
	p.OnDeleted = func(Item) { deleted++ }
	res, err := Apply(t.Context(), s, p)
	if err != nil || deleted != 0 || res.Skipped != 2 {
		t.Fatalf("Apply after a push = %+v, %v, want 2 skipped", res, err)
	}
	rc, err := s.OpenBlob(t.Context(), layer, 0)
	if err != nil {
		t.Fatalf("OpenBlob(%s) after Apply = %v", layer, err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "layer" {
		t.Errorf("blob = %q, want layer", data)
	}
}

func TestUploadsExpire(t *testing.T) {
	s := openStore(t)
	up, _ := s.StartUpload(t.Context(), "app", "")
	s.AppendUpload(t.Context(), "app", up.ID, 0, bytes.NewReader([]byte("half")))
	opts := Options{Grace: time.Hour, UploadMaxAge: 24 * time.Hour}
	if p, _ := Plan(t.Context(), s, opts); len(p.Items) != 0 {
		t.Errorf("Plan of a fresh upload = %v, want nothing", keys(p.Items))
	}
	opts.Now = time.Now().Add(25 * time.Hour)
	p, _ := Plan(t.Context(), s, opts)
	res, err := Apply(t.Context(), s, p)
	if err != nil || res.Uploads != 1 || res.Bytes != 4 {
		t.Errorf("Apply of an expired upload = %+v, %v, want 1 upload of 4 bytes", res, err)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
	c := DefaultConfig()
	c.Grace = "soon"
	if err := c.Validate(); err == nil {
		t.Errorf("Validate(grace = soon) = nil, want an error")
	}
	c.Grace = "7d"
	if err := c.Validate(); err != nil || c.Options().Grace != 7*24*time.Hour {
		t.Errorf("grace = 7d: Validate() = %v, Options().Grace = %v, want nil, 168h", err, c.Options().Grace)
	}
	if got := DefaultConfig().Options(); got.Grace != time.Hour || got.UploadMaxAge != 24*time.Hour || !got.DeleteOrphanReferrers || got.DeleteUntagged {
		t.Errorf("DefaultConfig().Options() = %+v", got)
	}
}

// TestApplyCountsFailures: items a pass could not delete are counted as
// failed, not as no longer qualified, and the error is returned.
func TestApplyCountsFailures(t *testing.T) {
	s, err := storage.Open(t.Context(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"app", "other"} {
		image(t, s, repo, "a", putBlob(t, s, repo, []byte("base")))
	}
	p, err := Plan(t.Context(), s, later(Options{DeleteUntagged: true}))
	if err != nil || len(p.Items) == 0 {
		t.Fatalf("Plan = %v, %v, want items", keys(p.Items), err)
	}
	s.Close() // every metadata write now fails
	res, err := Apply(t.Context(), s, p)
	if err == nil || res.Failed != len(p.Items) || res.Skipped != 0 {
		t.Errorf("Apply on a store that fails = %+v, %v, want %d failed, 0 skipped and an error", res, err, len(p.Items))
	}
}
