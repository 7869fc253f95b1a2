package storage

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testManifest returns an image manifest named by name that references
// blobs; its bytes are unique to name.
func testManifest(name string, blobs ...digest.Digest) Manifest {
	content := []byte(fmt.Sprintf(`{"schemaVersion":2,"name":%q,"layers":%q}`, name, blobs))
	return Manifest{
		Digest:    digest.FromBytes(content),
		MediaType: ocispec.MediaTypeImageManifest,
		Content:   content,
		Blobs:     blobs,
	}
}

func putManifest(t *testing.T, s *Store, repo string, m Manifest, tags ...string) {
	t.Helper()
	if err := s.PutManifest(t.Context(), repo, m, tags); err != nil {
		t.Fatalf("PutManifest(%s, %s) = %v", repo, m.Digest, err)
	}
}

func TestPutManifestReferences(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	layer := pushBlob(t, s, "app", []byte("layer"))
	foreign := pushBlob(t, s, "other", []byte("someone else's layer"))
	child := testManifest("child", layer)
	putManifest(t, s, "app", child)
	missing := digest.FromString("never pushed")

	index := testManifest("index")
	index.MediaType = ocispec.MediaTypeImageIndex
	index.Manifests = []digest.Digest{child.Digest}
	badIndex := testManifest("bad index")
	badIndex.Manifests = []digest.Digest{child.Digest, missing}
	referrer := testManifest("signature", layer)
	referrer.Subject = digest.FromString("subject not pushed yet")

	tests := []struct {
		name string
		m    Manifest
		want error // nil: accepted
	}{
		{"blobs linked", testManifest("ok", layer), nil},
		{"no blobs", testManifest("empty"), nil},
		{"missing blob", testManifest("missing", layer, missing), ErrManifestBlobUnknown},
		{"blob of another repository", testManifest("foreign", foreign), ErrManifestBlobUnknown},
		{"children present", index, nil},
		{"missing child manifest", badIndex, ErrManifestBlobUnknown},
		{"subject need not exist", referrer, nil},
		{"invalid digest", Manifest{Digest: "sha256:nope", Content: []byte("{}")}, ErrDigestInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.PutManifest(ctx, "app", tt.m, []string{"t-" + strings.ReplaceAll(tt.name, " ", "-")})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("PutManifest = %v, want nil", err)
				}
				got, err := s.GetManifest(ctx, "app", string(tt.m.Digest))
				if err != nil || !bytes.Equal(got.Content, tt.m.Content) {
					t.Errorf("GetManifest after PutManifest = %q, %v; want %q", got.Content, err, tt.m.Content)
				}
				return
			}
			wantErr(t, "PutManifest", err, tt.want)
			if tt.want == ErrManifestBlobUnknown && !strings.Contains(err.Error(), string(missing)) && !strings.Contains(err.Error(), string(foreign)) {
				t.Errorf("PutManifest = %q, want the error to name the unknown digest", err)
			}
			if _, err := s.StatManifest(ctx, "app", string(tt.m.Digest)); err == nil {
				t.Errorf("StatManifest after refused PutManifest = nil, want ErrManifestNotFound")
			}
			if _, err := s.StatManifest(ctx, "app", "t-"+strings.ReplaceAll(tt.name, " ", "-")); err == nil {
				t.Errorf("tag of refused PutManifest exists, want none")
			}
		})
	}

	// A refused manifest in a new repository does not create it.
	err := s.PutManifest(ctx, "fresh", testManifest("x", missing), []string{"latest"})
	wantErr(t, "PutManifest(new repository, missing blob)", err, ErrManifestBlobUnknown)
	if repos, _, _ := s.Repositories(ctx, "", -1); slices.Contains(repos, "fresh") {
		t.Errorf("Repositories = %v, want no repository for a refused manifest", repos)
	}
}

func TestGetManifest(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	layer := pushBlob(t, s, "app", []byte("layer"))
	m := testManifest("v1", layer)
	m.ArtifactType = "application/vnd.example"
	putManifest(t, s, "app", m, "v1", "latest")

	for _, ref := range []string{"v1", "latest", string(m.Digest)} {
		got, err := s.GetManifest(ctx, "app", ref)
		if err != nil {
			t.Fatalf("GetManifest(%s) = %v", ref, err)
		}
		// A pull loads only what it answers with.
		if got.Digest != m.Digest || got.MediaType != m.MediaType || !bytes.Equal(got.Content, m.Content) ||
			got.Size != int64(len(m.Content)) {
			t.Errorf("GetManifest(%s) = %+v, want digest, media type, bytes and size of %+v", ref, got, m)
		}
		stat, err := s.StatManifest(ctx, "app", ref)
		if err != nil || stat.Content != nil || stat.Digest != m.Digest || stat.Size != int64(len(m.Content)) {
			t.Errorf("StatManifest(%s) = %+v, %v; want the metadata without bytes", ref, stat, err)
		}
	}
	for _, tt := range []struct{ repo, ref string }{
		{"app", "v2"},
		{"app", string(digest.FromString("absent"))},
		{"nobody", "latest"},
		{"nobody", string(m.Digest)},
	} {
		_, err := s.GetManifest(ctx, tt.repo, tt.ref)
		wantErr(t, fmt.Sprintf("GetManifest(%s, %s)", tt.repo, tt.ref), err, ErrManifestNotFound)
	}

	// Moving a tag leaves the old manifest reachable by digest.
	m2 := testManifest("v2", layer)
	putManifest(t, s, "app", m2, "latest")
	if got, _ := s.StatManifest(ctx, "app", "latest"); got.Digest != m2.Digest {
		t.Errorf("latest after retag = %s, want %s", got.Digest, m2.Digest)
	}
	if got, _ := s.StatManifest(ctx, "app", "v1"); got.Digest != m.Digest {
		t.Errorf("v1 after retag of latest = %s, want %s", got.Digest, m.Digest)
	}
}

func TestDeleteManifest(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	layer := pushBlob(t, s, "app", []byte("layer"))
	subject := testManifest("subject", layer)
	putManifest(t, s, "app", subject, "stable")
	sig := testManifest("signature", layer)
	sig.Subject = subject.Digest
	sig.ArtifactType = "application/vnd.example.sig"
	sig.Annotations = map[string]string{"signed-by": "ci"}
	sbom := testManifest("sbom", layer)
	sbom.Subject = subject.Digest
	putManifest(t, s, "app", sig, "sig", "sig-alias")
	putManifest(t, s, "app", sbom)

	refs, err := s.Referrers(ctx, "app", subject.Digest)
	if err != nil || len(refs) != 2 {
		t.Fatalf("Referrers = %v, %v; want 2", refs, err)
	}
	for _, r := range refs {
		if r.Digest == sig.Digest && (r.ArtifactType != sig.ArtifactType || r.Annotations["signed-by"] != "ci" ||
			r.Size != int64(len(sig.Content)) || r.MediaType != sig.MediaType) {
			t.Errorf("Referrers entry = %+v, want the signature's descriptor", r)
		}
	}

	if err := s.DeleteManifest(ctx, "app", sig.Digest); err != nil {
		t.Fatalf("DeleteManifest = %v", err)
	}
	for _, ref := range []string{"sig", "sig-alias", string(sig.Digest)} {
		_, err := s.GetManifest(ctx, "app", ref)
		wantErr(t, "GetManifest("+ref+") after DeleteManifest", err, ErrManifestNotFound)
	}
	if tags, _, _ := s.Tags(ctx, "app", "", -1); !slices.Equal(tags, []string{"stable"}) {
		t.Errorf("Tags after DeleteManifest = %v, want [stable]", tags)
	}
	refs, err = s.Referrers(ctx, "app", subject.Digest)
	if err != nil || len(refs) != 1 || refs[0].Digest != sbom.Digest {
		t.Errorf("Referrers after deleting the signature = %v, %v; want only the sbom", refs, err)
	}
	wantErr(t, "DeleteManifest twice", s.DeleteManifest(ctx, "app", sig.Digest), ErrManifestNotFound)
	wantErr(t, "DeleteManifest(unknown repo)", s.DeleteManifest(ctx, "nobody", sig.Digest), ErrManifestNotFound)
	wantErr(t, "DeleteManifest(invalid)", s.DeleteManifest(ctx, "app", "sha256:zz"), ErrDigestInvalid)
}

func TestDeleteTag(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	m := testManifest("tagged")
	putManifest(t, s, "app", m, "a", "b")
	if err := s.DeleteTag(ctx, "app", "a"); err != nil {
		t.Fatalf("DeleteTag = %v", err)
	}
	_, err := s.GetManifest(ctx, "app", "a")
	wantErr(t, "GetManifest(deleted tag)", err, ErrManifestNotFound)
	for _, ref := range []string{"b", string(m.Digest)} {
		if _, err := s.GetManifest(ctx, "app", ref); err != nil {
			t.Errorf("GetManifest(%s) after DeleteTag(a) = %v, want the manifest kept", ref, err)
		}
	}
	wantErr(t, "DeleteTag twice", s.DeleteTag(ctx, "app", "a"), ErrManifestNotFound)
	wantErr(t, "DeleteTag(unknown repo)", s.DeleteTag(ctx, "nobody", "a"), ErrManifestNotFound)
}

func TestTagsPagination(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	putManifest(t, s, "app", testManifest("one"), "v10", "v2", "latest", "a", "B")
	all := []string{"B", "a", "latest", "v10", "v2"} // lexical, byte order
	tests := []struct {
		last     string
		n        int
		want     []string
		wantMore bool
	}{
		{"", -1, all, false},
		{"", 0, []string{}, false},
		{"a", 0, []string{}, false},
		{"", 2, []string{"B", "a"}, true},
		{"a", 2, []string{"latest", "v10"}, true},
		{"v10", 2, []string{"v2"}, false},
		{"latest", 2, []string{"v10", "v2"}, false}, // a full last page has no more
		{"", 5, all, false},
		{"", 6, all, false},
		{"b", 10, []string{"latest", "v10", "v2"}, false}, // last need not be a tag
		{"v2", 10, []string{}, false},
		{"zzz", -1, []string{}, false},
	}
	for _, tt := range tests {
		got, more, err := s.Tags(ctx, "app", tt.last, tt.n)
		if err != nil || got == nil || !slices.Equal(got, tt.want) || more != tt.wantMore {
			t.Errorf("Tags(last=%q, n=%d) = %q, %v, %v; want %q, %v, nil", tt.last, tt.n, got, more, err, tt.want, tt.wantMore)
		}
	}
	_, _, err := s.Tags(ctx, "nobody", "", -1)
	wantErr(t, "Tags(unknown repo)", err, ErrRepositoryNotFound)

	// A repository whose manifests have no tags lists none, not an error.
	putManifest(t, s, "untagged", testManifest("by digest only"))
	if got, more, err := s.Tags(ctx, "untagged", "", -1); err != nil || got == nil || len(got) != 0 || more {
		t.Errorf("Tags(untagged) = %q, %v, %v; want [], false, nil", got, more, err)
	}
}

func TestRepositories(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	if got, more, err := s.Repositories(ctx, "", -1); err != nil || got == nil || len(got) != 0 || more {
		t.Errorf("Repositories(empty store) = %q, %v, %v; want [], false, nil", got, more, err)
	}
	m := testManifest("m")
	for _, repo := range []string{"zeta", "alpha/beta", "alpha", "mid/deep/er"} {
		putManifest(t, s, repo, m)
	}
	blobOnly := pushBlob(t, s, "blob-only", []byte("just a blob"))

	all := []string{"alpha", "alpha/beta", "blob-only", "mid/deep/er", "zeta"}
	pages := []struct {
		last     string
		n        int
		want     []string
		wantMore bool
	}{
		{"", -1, all, false},
		{"", 0, []string{}, false},
		{"", 2, all[:2], true},
		{"alpha/beta", 2, all[2:4], true},
		{"mid/deep/er", 2, all[4:], false},
	}
	for _, tt := range pages {
		got, more, err := s.Repositories(ctx, tt.last, tt.n)
		if err != nil || !slices.Equal(got, tt.want) || more != tt.wantMore {
			t.Errorf("Repositories(last=%q, n=%d) = %q, %v, %v; want %q, %v", tt.last, tt.n, got, more, err, tt.want, tt.wantMore)
		}
	}

	// A repository with nothing left leaves the catalog; one with a blob
	// link left stays.
	layer := pushBlob(t, s, "zeta", []byte("zeta layer"))
	if err := s.DeleteManifest(ctx, "alpha", m.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteManifest(ctx, "zeta", m.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBlob(ctx, "blob-only", blobOnly); err != nil {
		t.Fatal(err)
	}
	want := []string{"alpha/beta", "mid/deep/er", "zeta"}
	if got, _, _ := s.Repositories(ctx, "", -1); !slices.Equal(got, want) {
		t.Errorf("Repositories after deletes = %q, want %q", got, want)
	}
	if err := s.DeleteBlob(ctx, "zeta", layer); err != nil {
		t.Fatal(err)
	}
	want = []string{"alpha/beta", "mid/deep/er"}
	if got, _, _ := s.Repositories(ctx, "", -1); !slices.Equal(got, want) {
		t.Errorf("Repositories after zeta emptied = %q, want %q", got, want)
	}
	_, _, err := s.Tags(ctx, "zeta", "", -1)
	wantErr(t, "Tags(emptied repository)", err, ErrRepositoryNotFound)
}

func TestReferrersEmpty(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	m := testManifest("lonely")
	putManifest(t, s, "app", m)
	for _, tt := range []struct {
		repo string
		d    digest.Digest
	}{
		{"nobody", m.Digest},
		{"app", m.Digest},
		{"app", digest.FromString("unknown subject")},
	} {
		got, err := s.Referrers(ctx, tt.repo, tt.d)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("Referrers(%s, %s) = %v, %v; want a non-nil empty list", tt.repo, tt.d, got, err)
		}
	}
	_, err := s.Referrers(ctx, "app", "sha256:bad")
	wantErr(t, "Referrers(invalid digest)", err, ErrDigestInvalid)

	// A referrer in one repository is not listed in another.
	sig := testManifest("sig")
	sig.Subject = m.Digest
	putManifest(t, s, "app", sig)
	putManifest(t, s, "copy", m)
	if got, _ := s.Referrers(ctx, "copy", m.Digest); len(got) != 0 {
		t.Errorf("Referrers(copy) = %v, want none: the referrer lives in app", got)
	}
}

// TestPutCachedManifest: a cached manifest is stored before what it
// references, and keeps its references.
func TestPutCachedManifest(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	m := testManifest("cached", digest.FromString("not yet fetched"))
	if err := s.PutManifest(ctx, "docker.io/library/app", m, []string{"1"}); !errors.Is(err, ErrManifestBlobUnknown) {
		t.Fatalf("PutManifest with a missing blob = %v, want ErrManifestBlobUnknown", err)
	}
	if err := s.PutCachedManifest(ctx, "docker.io/library/app", m, []string{"1"}); err != nil {
		t.Fatalf("PutCachedManifest with a missing blob = %v, want nil", err)
	}
	got, err := s.GetManifest(ctx, "docker.io/library/app", "1")
	if err != nil || got.Digest != m.Digest || string(got.Content) != string(m.Content) {
		t.Errorf("GetManifest(app:1) = %v, %v; want %s", got.Digest, err, m.Digest)
	}
}
