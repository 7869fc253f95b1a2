package storage

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// future is a cutoff after everything the test created: nothing is
// protected by age.
func future() time.Time { return time.Now().Add(time.Hour) }

func knownManifests(t *testing.T, s *Store, repo string) map[digest.Digest]bool {
	t.Helper()
	known := map[digest.Digest]bool{}
	s.ScanRepos(t.Context(), func(r *GCRepo) error {
		if r.Name == repo {
			for _, m := range r.Manifests {
				known[m.Digest] = true
			}
		}
		return nil
	})
	return known
}

func TestCollectUnreferencedImage(t *testing.T) {
	s := newStore(t)
	layer := pushBlob(t, s, "app", []byte("layer"))
	m := testManifest("one", layer)
	putManifest(t, s, "app", m)
	p := GCRepoPlan{Repo: "app", Known: knownManifests(t, s, "app"), Manifests: []digest.Digest{m.Digest}, Links: []digest.Digest{layer}, Cutoff: future()}
	ms, ls, err := s.CollectRepo(t.Context(), p)
	if err != nil || len(ms) != 1 || len(ls) != 1 {
		t.Fatalf("CollectRepo = %v, %v, %v, want the manifest and the link", ms, ls, err)
	}
	if _, err := s.StatManifest(t.Context(), "app", string(m.Digest)); err == nil {
		t.Errorf("StatManifest after collect = nil, want not found")
	}
	deleted, err := s.CollectBlobs(t.Context(), []digest.Digest{layer}, future())
	if err != nil || len(deleted) != 1 {
		t.Fatalf("CollectBlobs = %v, %v, want the layer", deleted, err)
	}
	if keys := driverKeys(t, s, "blobs"); len(keys) != 0 {
		t.Errorf("blob files after collect = %v, want none", keys)
	}
	if repos, _, _ := s.Repositories(t.Context(), "", -1); len(repos) != 0 {
		t.Errorf("Repositories after collect = %v, want none", repos)
	}
}

func TestCollectKeepsWhatAPushUses(t *testing.T) {
	s := newStore(t)
	layer := pushBlob(t, s, "app", []byte("layer"))
	known := knownManifests(t, s, "app")
	// Pushed after the plan: the link it needs stays.
	m := testManifest("late", layer)
	putManifest(t, s, "app", m)
	p := GCRepoPlan{Repo: "app", Known: known, Links: []digest.Digest{layer}, Cutoff: future()}
	if _, ls, err := s.CollectRepo(t.Context(), p); err != nil || len(ls) != 0 {
		t.Errorf("CollectRepo with a new manifest = %v, %v, want the link kept", ls, err)
	}
	if deleted, _ := s.CollectBlobs(t.Context(), []digest.Digest{layer}, future()); len(deleted) != 0 {
		t.Errorf("CollectBlobs of a linked blob = %v, want none", deleted)
	}
	// Tagged after the plan: the manifest stays.
	untagged := testManifest("untagged", layer)
	putManifest(t, s, "app", untagged)
	known = knownManifests(t, s, "app")
	putManifest(t, s, "app", untagged, "v1")
	p = GCRepoPlan{Repo: "app", Known: known, Manifests: []digest.Digest{untagged.Digest}, Cutoff: future()}
	if ms, _, err := s.CollectRepo(t.Context(), p); err != nil || len(ms) != 0 {
		t.Errorf("CollectRepo of a manifest tagged since = %v, %v, want it kept", ms, err)
	}
}

func TestCollectRespectsCutoffAndChecks(t *testing.T) {
	s := newStore(t)
	layer := pushBlob(t, s, "app", []byte("layer"))
	p := GCRepoPlan{Repo: "app", Links: []digest.Digest{layer}, Cutoff: time.Now().Add(-time.Minute)}
	if _, ls, _ := s.CollectRepo(t.Context(), p); len(ls) != 0 {
		t.Errorf("CollectRepo of a link newer than the cutoff = %v, want kept", ls)
	}
	if deleted, _ := s.CollectBlobs(t.Context(), []digest.Digest{layer}, p.Cutoff); len(deleted) != 0 {
		t.Errorf("CollectBlobs of a blob newer than the cutoff = %v, want kept", deleted)
	}
	cutoff := time.Now().Add(time.Millisecond)
	time.Sleep(2 * time.Millisecond)
	s.StatBlob(t.Context(), "app", layer) // a client checks it after the cutoff
	p = GCRepoPlan{Repo: "app", Links: []digest.Digest{layer}, Cutoff: cutoff}
	if _, ls, _ := s.CollectRepo(t.Context(), p); len(ls) != 0 {
		t.Errorf("CollectRepo of a link checked after the cutoff = %v, want kept", ls)
	}
}

func TestCollectIndexAndReferrers(t *testing.T) {
	s := newStore(t)
	layer := pushBlob(t, s, "app", []byte("layer"))
	child := testManifest("child", layer)
	putManifest(t, s, "app", child)
	index := testManifest("index")
	index.Manifests = []digest.Digest{child.Digest}
	putManifest(t, s, "app", index, "v1")
	sig := testManifest("sig")
	sig.Subject = index.Digest
	putManifest(t, s, "app", sig)
	known := knownManifests(t, s, "app")
	// A plan that (wrongly) names everything: the index is tagged, so its
	// child and its referrer stay.
	p := GCRepoPlan{Repo: "app", Known: known, Manifests: []digest.Digest{index.Digest, child.Digest, sig.Digest}, Cutoff: future()}
	if ms, _, err := s.CollectRepo(t.Context(), p); err != nil || len(ms) != 0 {
		t.Errorf("CollectRepo under a tagged index = %v, %v, want nothing", ms, err)
	}
	s.DeleteTag(t.Context(), "app", "v1")
	ms, _, err := s.CollectRepo(t.Context(), p)
	if err != nil || len(ms) != 3 {
		t.Errorf("CollectRepo once untagged = %v, %v, want all three", ms, err)
	}
	if refs, _ := s.Referrers(t.Context(), "app", index.Digest); len(refs) != 0 {
		t.Errorf("Referrers after collect = %v, want none", refs)
	}
}

func TestOrphanFiles(t *testing.T) {
	s := newStore(t)
	keep := pushBlob(t, s, "app", []byte("kept"))
	orphan := digest.FromString("orphan")
	for _, key := range []string{blobKey(orphan), "uploads/0123456789abcdef0123456789abcdef", "blobs/junk"} {
		w, err := s.blobs.Writer(t.Context(), key, 0)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("leftover"))
		w.Commit()
	}
	scan := func() []GCFile {
		var out []GCFile
		if err := s.ScanOrphanFiles(t.Context(), func(f GCFile) error { out = append(out, f); return nil }); err != nil {
			t.Fatalf("ScanOrphanFiles = %v", err)
		}
		return out
	}
	files := scan()
	if len(files) != 3 {
		t.Fatalf("ScanOrphanFiles = %v, want 3 files", files)
	}
	// Never noted: nothing is deleted.
	if deleted, _ := s.DeleteOrphanFiles(t.Context(), files, future()); len(deleted) != 0 {
		t.Errorf("DeleteOrphanFiles before noting = %v, want none", deleted)
	}
	if err := s.NoteOrphans(t.Context(), files, time.Now()); err != nil {
		t.Fatalf("NoteOrphans = %v", err)
	}
	files = scan()
	for _, f := range files {
		if f.FirstSeen.IsZero() {
			t.Errorf("ScanOrphanFiles after NoteOrphans: %s FirstSeen zero", f.Key)
		}
	}
	if deleted, _ := s.DeleteOrphanFiles(t.Context(), files, time.Now().Add(-time.Hour)); len(deleted) != 0 {
		t.Errorf("DeleteOrphanFiles within grace = %v, want none", deleted)
	}
	deleted, err := s.DeleteOrphanFiles(t.Context(), files, future())
	if err != nil || len(deleted) != 3 {
		t.Errorf("DeleteOrphanFiles = %v, %v, want 3", deleted, err)
	}
	keys := driverKeys(t, s, "")
	for k := range keys {
		if (strings.HasPrefix(k, "blobs/") && k != blobKey(keep)) || strings.HasPrefix(k, "uploads/") {
			t.Errorf("file %s left after DeleteOrphanFiles", k)
		}
	}
	if got := readBlob(t, s, "app", keep); string(got) != "kept" {
		t.Errorf("kept blob = %q, want kept", got)
	}
}

func TestExpireUploads(t *testing.T) {
	s := newStore(t)
	up, err := s.StartUpload(t.Context(), "app", "")
	if err != nil {
		t.Fatal(err)
	}
	s.AppendUpload(t.Context(), "app", up.ID, 0, strings.NewReader("partial"))
	if got, _ := s.ExpireUploads(t.Context(), []string{up.ID}, time.Now().Add(-time.Hour)); len(got) != 0 {
		t.Errorf("ExpireUploads of a fresh session = %v, want none", got)
	}
	got, err := s.ExpireUploads(t.Context(), []string{up.ID}, future())
	if err != nil || len(got) != 1 || got[0].Offset != 7 {
		t.Fatalf("ExpireUploads = %v, %v, want the session of 7 bytes", got, err)
	}
	if _, err := s.GetUpload(t.Context(), "app", up.ID); err == nil {
		t.Errorf("GetUpload after expiry = nil, want not found")
	}
	if keys := driverKeys(t, s, "uploads"); len(keys) != 0 {
		t.Errorf("upload files after expiry = %v, want none", keys)
	}
}

func TestDeleteTagIf(t *testing.T) {
	s := newStore(t)
	a, b := testManifest("a"), testManifest("b")
	putManifest(t, s, "app", a, "v1")
	putManifest(t, s, "app", b, "v1")
	pushed := tagPushed(t, s, "app", "v1")
	if ok, err := s.DeleteTagIf(t.Context(), "app", "v1", a.Digest, pushed); ok || err != nil {
		t.Errorf("DeleteTagIf(v1, old digest) = %v, %v, want false", ok, err)
	}
	if ok, err := s.DeleteTagIf(t.Context(), "app", "v1", b.Digest, pushed.Add(-time.Second)); ok || err != nil {
		t.Errorf("DeleteTagIf(v1, current digest, earlier push) = %v, %v, want false", ok, err)
	}
	if ok, err := s.DeleteTagIf(t.Context(), "app", "v1", b.Digest, pushed); !ok || err != nil {
		t.Errorf("DeleteTagIf(v1, current digest and push) = %v, %v, want true", ok, err)
	}
}

// tagPushed returns when tag of repo was last pushed, as a scan sees it.
func tagPushed(t *testing.T, s *Store, repo, tag string) time.Time {
	t.Helper()
	var pushed time.Time
	s.ScanRepos(t.Context(), func(r *GCRepo) error {
		for _, tg := range r.Tags {
			if r.Name == repo && tg.Name == tag {
				pushed = tg.Pushed
			}
		}
		return nil
	})
	if pushed.IsZero() {
		t.Fatalf("tag %s:%s not found", repo, tag)
	}
	return pushed
}

func TestCollectBlobsManyRepos(t *testing.T) {
	s := newStore(t)
	// Links spread over repositories and over the key range, some of the
	// candidates linked in one repository only, far apart or adjacent.
	var all []digest.Digest
	for i := range 60 {
		all = append(all, pushBlob(t, s, fmt.Sprintf("r%d", i%7), []byte(fmt.Sprintf("blob %d", i))))
	}
	keep := map[digest.Digest]bool{}
	for i, d := range all {
		if i%3 == 0 {
			keep[d] = true
			continue
		}
		if err := s.DeleteBlob(t.Context(), fmt.Sprintf("r%d", i%7), d); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := s.CollectBlobs(t.Context(), all, future())
	if err != nil {
		t.Fatal(err)
	}
	got := map[digest.Digest]bool{}
	for _, b := range deleted {
		got[b.Digest] = true
	}
	for _, d := range all {
		if got[d] == keep[d] {
			t.Errorf("CollectBlobs deleted %s = %t, want %t", d, got[d], !keep[d])
		}
	}
	if keys := driverKeys(t, s, "blobs"); len(keys) != len(keep) {
		t.Errorf("blob files after collect = %d, want %d", len(keys), len(keep))
	}
}

func TestCollectBlobsKeepsReuploadedFile(t *testing.T) {
	s := newStore(t)
	layer := pushBlob(t, s, "app", []byte("layer"))
	s.DeleteBlob(t.Context(), "app", layer)
	// The record goes; the same bytes are pushed again before the file
	// is deleted: the file is the new blob's now.
	err := s.commit.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketBlobs).Delete(digestKey(layer)) })
	if err != nil {
		t.Fatal(err)
	}
	pushBlob(t, s, "app", []byte("layer"))
	if err := s.deleteBlobFiles(t.Context(), []BlobInfo{{Digest: layer, Size: 5}}, map[digest.Digest]string{layer: blobKey(layer)}); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, s, "app", layer); string(got) != "layer" {
		t.Errorf("blob after a re-upload raced GC = %q, want %q", got, "layer")
	}
}

func TestScanOrphanFilesSizesUnknownFiles(t *testing.T) {
	s := newStore(t)
	pushBlob(t, s, "app", []byte("known"))
	w, err := s.blobs.Writer(t.Context(), "blobs/sha256/00/unknown", 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("twelve bytes"))
	w.Commit()
	var got []GCFile
	s.ScanOrphanFiles(t.Context(), func(f GCFile) error { got = append(got, f); return nil })
	if len(got) != 1 || got[0].Key != "blobs/sha256/00/unknown" || got[0].Size != 12 {
		t.Errorf("ScanOrphanFiles = %+v, want blobs/sha256/00/unknown of 12 bytes", got)
	}
}

// TestScanReposUnderAndBlobSizes: ScanReposUnder reads only the
// repositories under its prefix; BlobSizes answers stored blobs only.
func TestScanReposUnderAndBlobSizes(t *testing.T) {
	s := newStore(t)
	var stored []digest.Digest
	for _, repo := range []string{"docker.io/library/a", "docker.io/x/b", "docker.iox", "ghcr.io/c", "local"} {
		stored = append(stored, pushBlob(t, s, repo, []byte("bytes of "+repo)))
	}
	var got []string
	if err := s.ScanReposUnder(t.Context(), "docker.io/", func(r *GCRepo) error {
		got = append(got, r.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := "docker.io/library/a docker.io/x/b"; strings.Join(got, " ") != want {
		t.Errorf("ScanReposUnder(docker.io/) = %v, want %s", got, want)
	}
	missing := digest.FromString("never stored")
	sizes := s.BlobSizes(t.Context(), []digest.Digest{stored[0], missing})
	if len(sizes) != 1 || sizes[stored[0]] != int64(len("bytes of docker.io/library/a")) {
		t.Errorf("BlobSizes = %v, want only %s with its size", sizes, stored[0])
	}
}
