package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// newStore opens a store on a fresh directory, closed when the test ends.
func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openAt opens the store at root; the caller closes it.
func openAt(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatalf("Open(%s) = %v", root, err)
	}
	return s
}

// pushBlob stores data as a sha256 blob of repo.
func pushBlob(t *testing.T, s *Store, repo string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	info, err := s.PutBlob(t.Context(), repo, d, int64(len(data)), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("PutBlob(%s, %s) = %v", repo, d, err)
	}
	if info.Digest != d || info.Size != int64(len(data)) {
		t.Fatalf("PutBlob(%s) = %+v, want %s of %d bytes", repo, info, d, len(data))
	}
	return d
}

// readBlob returns the bytes of blob d after checking repo may read it.
func readBlob(t *testing.T, s *Store, repo string, d digest.Digest) []byte {
	t.Helper()
	if _, err := s.StatBlob(t.Context(), repo, d); err != nil {
		t.Fatalf("StatBlob(%s, %s) = %v", repo, d, err)
	}
	rc, err := s.OpenBlob(t.Context(), d, 0)
	if err != nil {
		t.Fatalf("OpenBlob(%s) = %v", d, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("ReadAll(%s) = %v", d, err)
	}
	return data
}

// driverKeys returns the driver's keys under prefix with their sizes.
func driverKeys(t *testing.T, s *Store, prefix string) map[string]int64 {
	t.Helper()
	keys := map[string]int64{}
	if err := s.blobs.Walk(t.Context(), prefix, func(key string, size int64) error {
		keys[key] = size
		return nil
	}); err != nil {
		t.Fatalf("Walk(%s) = %v", prefix, err)
	}
	return keys
}

func wantErr(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", call, err, want)
	}
}

func TestPutBlob(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	data := []byte("layer bytes")
	sha512d := digest.SHA512.FromBytes(data)
	tests := []struct {
		name string
		d    digest.Digest
		size int64
		body []byte
		want error
	}{
		{"sha256", digest.FromBytes(data), int64(len(data)), data, nil},
		{"sha512", sha512d, int64(len(data)), data, nil},
		{"unknown size", digest.FromString("unknown size"), -1, []byte("unknown size"), nil},
		{"empty", digest.FromBytes(nil), 0, nil, nil},
		{"size too big", digest.FromString("short"), 6, []byte("short"), ErrSizeMismatch},
		{"size too small", digest.FromString("longer"), 2, []byte("longer"), ErrSizeMismatch},
		{"digest mismatch", digest.FromString("other"), int64(len(data)), data, ErrDigestMismatch},
		{"invalid digest", "sha256:xyz", 3, []byte("xyz"), ErrDigestInvalid},
		{"unsupported algorithm", "md5:d41d8cd98f00b204e9800998ecf8427e", 0, nil, ErrDigestInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := s.PutBlob(ctx, "repo", tt.d, tt.size, bytes.NewReader(tt.body))
			if tt.want != nil {
				wantErr(t, "PutBlob", err, tt.want)
				if _, err := s.StatBlob(ctx, "repo", tt.d); err == nil {
					t.Errorf("StatBlob after failed PutBlob = nil, want an error")
				}
				return
			}
			if err != nil || info.Size != int64(len(tt.body)) {
				t.Fatalf("PutBlob = %+v, %v; want %d bytes", info, err, len(tt.body))
			}
			if got := readBlob(t, s, "repo", tt.d); !bytes.Equal(got, tt.body) {
				t.Errorf("blob bytes = %q, want %q", got, tt.body)
			}
		})
	}
	if keys := driverKeys(t, s, "uploads"); len(keys) != 0 {
		t.Errorf("upload files left after PutBlob = %v, want none", keys)
	}
	if keys := driverKeys(t, s, "blobs/sha512"); len(keys) != 1 {
		t.Errorf("sha512 blob files = %v, want 1", keys)
	}
}

func TestPutBlobReaderFails(t *testing.T) {
	s := newStore(t)
	boom := errors.New("client went away")
	d := digest.FromString("never whole")
	_, err := s.PutBlob(t.Context(), "repo", d, -1, io.MultiReader(strings.NewReader("never"), failingReader{boom}))
	wantErr(t, "PutBlob(failing reader)", err, boom)
	wantErr(t, "StatBlob", func() error { _, err := s.StatBlob(t.Context(), "repo", d); return err }(), ErrBlobNotFound)
	if keys := driverKeys(t, s, ""); len(keys) != 3 {
		t.Errorf("driver keys after failed PutBlob = %v, want only metadata.db, metadata.wal and meta.db", keys)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestBlobDedupe(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	data := bytes.Repeat([]byte("shared layer "), 1000)
	d := pushBlob(t, s, "team/a", data)
	pushBlob(t, s, "team/b", data)
	// Through an upload session too.
	up, err := s.StartUpload(ctx, "team/c", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload(ctx, "team/c", up.ID, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload(ctx, "team/c", up.ID, d); err != nil {
		t.Fatalf("CommitUpload of an existing blob = %v", err)
	}

	want := map[string]int64{blobKey(d): int64(len(data))}
	if got := driverKeys(t, s, "blobs"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("blob files = %v, want %v", got, want)
	}
	if got := driverKeys(t, s, "uploads"); len(got) != 0 {
		t.Errorf("upload files = %v, want none", got)
	}
	for _, repo := range []string{"team/a", "team/b", "team/c"} {
		if got := readBlob(t, s, repo, d); !bytes.Equal(got, data) {
			t.Errorf("blob of %s = %d bytes, want %d", repo, len(got), len(data))
		}
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Blobs != 1 || st.BlobBytes != int64(len(data)) {
		t.Errorf("Stats = %+v, %v; want 1 blob of %d bytes", st, err, len(data))
	}
}

func TestStatBlobPerRepository(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	d := pushBlob(t, s, "a", []byte("private to a"))
	pushBlob(t, s, "b", []byte("b has a repo"))
	tests := []struct {
		repo string
		d    digest.Digest
		want error
	}{
		{"a", d, nil},
		{"b", d, ErrBlobNotFound},
		{"never-pushed", d, ErrBlobNotFound},
		{"a", digest.FromString("unknown"), ErrBlobNotFound},
		{"a", "sha256:short", ErrDigestInvalid},
		{"a", "sha256:../../../meta.db", ErrDigestInvalid},
		{"a", "", ErrDigestInvalid},
	}
	for _, tt := range tests {
		info, err := s.StatBlob(ctx, tt.repo, tt.d)
		if tt.want == nil {
			if err != nil || info.Digest != d || info.Size != 12 {
				t.Errorf("StatBlob(%s, %s) = %+v, %v; want 12 bytes", tt.repo, tt.d, info, err)
			}
			continue
		}
		wantErr(t, fmt.Sprintf("StatBlob(%s, %s)", tt.repo, tt.d), err, tt.want)
	}
}

func TestMountBlob(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	d := pushBlob(t, s, "src", []byte("mount me"))

	info, err := s.MountBlob(ctx, "src", "dst", d)
	if err != nil || info.Size != 8 {
		t.Fatalf("MountBlob(src→dst) = %+v, %v; want 8 bytes", info, err)
	}
	readBlob(t, s, "dst", d)

	_, err = s.MountBlob(ctx, "elsewhere", "thief", d)
	wantErr(t, "MountBlob(from a repo without it)", err, ErrBlobNotFound)
	_, err = s.MountBlob(ctx, "src", "thief", digest.FromString("missing"))
	wantErr(t, "MountBlob(missing blob)", err, ErrBlobNotFound)
	_, err = s.StatBlob(ctx, "thief", d)
	wantErr(t, "StatBlob(thief) after refused mounts", err, ErrBlobNotFound)
	if repos, _, _ := s.Repositories(ctx, "", -1); slices.Contains(repos, "thief") {
		t.Errorf("Repositories = %v, want no repository for a refused mount", repos)
	}
}

func TestMountAnyBlob(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	d := pushBlob(t, s, "secret", []byte("only secret has it"))
	pushBlob(t, s, "public", []byte("public has something else"))

	var asked []string
	refuse := func(repo string) bool { asked = append(asked, repo); return false }
	_, err := s.MountAnyBlob(ctx, "mine", d, refuse)
	wantErr(t, "MountAnyBlob(allowed refuses)", err, ErrBlobNotFound)
	if !slices.Contains(asked, "secret") {
		t.Errorf("allowed was asked about %v, want secret among them", asked)
	}
	_, err = s.StatBlob(ctx, "mine", d)
	wantErr(t, "StatBlob after refused MountAnyBlob", err, ErrBlobNotFound)

	onlyPublic := func(repo string) bool { return repo == "public" }
	_, err = s.MountAnyBlob(ctx, "mine", d, onlyPublic)
	wantErr(t, "MountAnyBlob(allowed repos lack it)", err, ErrBlobNotFound)

	_, err = s.MountAnyBlob(ctx, "mine", digest.FromString("nobody has it"), func(string) bool { return true })
	wantErr(t, "MountAnyBlob(unknown digest)", err, ErrBlobNotFound)

	info, err := s.MountAnyBlob(ctx, "mine", d, func(repo string) bool { return repo == "secret" })
	if err != nil || info.Digest != d || info.Size != 18 {
		t.Fatalf("MountAnyBlob(allowed secret) = %+v, %v; want %s of 18 bytes", info, err, d)
	}
	readBlob(t, s, "mine", d)
}

// TestMountAnyBlobAsksOutsideWrites: the caller's permission check runs
// while no metadata write is open, so however slow it is, other writes go
// on.
func TestMountAnyBlobAsksOutsideWrites(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	d := pushBlob(t, s, "b-has", []byte("mountable"))
	pushBlob(t, s, "a-other", []byte("something else"))
	if _, err := s.MountBlob(ctx, "b-has", "c-has", d); err != nil {
		t.Fatal(err)
	}
	var asked []string
	var waiting []chan error
	stalled := 0
	allowed := func(repo string) bool {
		asked = append(asked, repo)
		done := make(chan error, 1)
		go func() { _, err := s.StartUpload(ctx, "elsewhere", ""); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("StartUpload during the check = %v", err)
			}
		case <-time.After(time.Second):
			stalled++ // it may finish only once MountAnyBlob commits
			waiting = append(waiting, done)
		}
		return repo == "c-has"
	}
	if _, err := s.MountAnyBlob(ctx, "mine", d, allowed); err != nil {
		t.Fatalf("MountAnyBlob = %v", err)
	}
	for _, done := range waiting {
		<-done
	}
	if stalled > 0 {
		t.Errorf("%d writes waited for the permission check: it ran inside a write transaction", stalled)
	}
	if !slices.Equal(asked, []string{"a-other", "b-has", "c-has"}) {
		t.Errorf("allowed was asked about %v, want every repository once, in order", asked)
	}
	readBlob(t, s, "mine", d)
}

func TestDeleteBlob(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	data := []byte("shared by two")
	d := pushBlob(t, s, "one", data)
	pushBlob(t, s, "two", data)

	if err := s.DeleteBlob(ctx, "one", d); err != nil {
		t.Fatalf("DeleteBlob = %v", err)
	}
	_, err := s.StatBlob(ctx, "one", d)
	wantErr(t, "StatBlob(one) after DeleteBlob", err, ErrBlobNotFound)
	if got := readBlob(t, s, "two", d); !bytes.Equal(got, data) {
		t.Errorf("blob of two after one deleted it = %q, want %q", got, data)
	}
	wantErr(t, "DeleteBlob twice", s.DeleteBlob(ctx, "one", d), ErrBlobNotFound)
	wantErr(t, "DeleteBlob(unknown repo)", s.DeleteBlob(ctx, "nobody", d), ErrBlobNotFound)
	if keys := driverKeys(t, s, "blobs"); len(keys) != 1 {
		t.Errorf("blob files after unlink = %v, want the bytes kept for GC", keys)
	}
	if repos, _, _ := s.Repositories(ctx, "", -1); !slices.Equal(repos, []string{"two"}) {
		t.Errorf("Repositories after one lost its only blob = %v, want [two]", repos)
	}
}

func TestPulls(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	ctx := t.Context()
	cfg := pushBlob(t, s, "app", []byte("{}"))
	m := testManifest("pulled", cfg)
	putManifest(t, s, "app", m, "latest")
	gone := testManifest("deleted before flush", cfg)
	putManifest(t, s, "app", gone)

	if _, ok := s.LastPulled(ctx, "app", m.Digest); ok {
		t.Errorf("LastPulled before any pull = ok, want not pulled")
	}
	before := time.Now()
	s.RecordPull(ctx, "app", m.Digest)
	s.RecordPull(ctx, "app", gone.Digest)
	at, ok := s.LastPulled(ctx, "app", m.Digest)
	if !ok || at.Before(before) || time.Since(at) > time.Minute {
		t.Errorf("LastPulled right after RecordPull = %v, %v; want about %v", at, ok, before)
	}
	if _, ok := s.LastPulled(ctx, "other", m.Digest); ok {
		t.Errorf("LastPulled(other repo) = ok, want not pulled")
	}
	if err := s.DeleteManifest(ctx, "app", gone.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	s = openAt(t, root)
	defer s.Close()
	after, ok := s.LastPulled(ctx, "app", m.Digest)
	if !ok || !after.Equal(at) {
		t.Errorf("LastPulled after reopen = %v, %v; want %v, true", after, ok, at)
	}
	if _, ok := s.LastPulled(ctx, "app", gone.Digest); ok {
		t.Errorf("LastPulled(manifest deleted before flush) after reopen = ok, want not pulled")
	}
}

func TestStats(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	if st, err := s.Stats(ctx); err != nil || st != (Stats{}) {
		t.Errorf("Stats(empty) = %+v, %v; want zeros", st, err)
	}
	pushBlob(t, s, "a", []byte("12345"))
	pushBlob(t, s, "a", []byte("123"))
	pushBlob(t, s, "b", []byte("12345"))
	for range 2 {
		if _, err := s.StartUpload(ctx, "c", ""); err != nil {
			t.Fatal(err)
		}
	}
	want := Stats{Repositories: 2, Blobs: 2, BlobBytes: 8, Uploads: 2}
	if st, err := s.Stats(ctx); err != nil || st != want {
		t.Errorf("Stats = %+v, %v; want %+v", st, err, want)
	}
}

func TestReady(t *testing.T) {
	s := newStore(t)
	if err := s.Ready(t.Context()); err != nil {
		t.Errorf("Ready = %v, want nil", err)
	}
}

func TestOpen(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no driver", Config{Root: root}, "storage.driver"},
		{"unknown driver", Config{Driver: "floppy", Root: root}, "storage.driver"},
		{"no root", Config{Driver: "filesystem"}, "storage.root"},
	}
	for _, tt := range tests {
		if s, err := Open(t.Context(), tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			if err == nil {
				s.Close()
			}
			t.Errorf("Open(%s) = %v, want an error naming %s", tt.name, err, tt.want)
		}
	}
}

func TestOpenTwiceFails(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	defer s.Close()
	start := time.Now()
	second, err := Open(t.Context(), Config{Driver: "filesystem", Root: root})
	if err == nil {
		second.Close()
		t.Fatalf("second Open of one root = nil, want the metadata file reported as held")
	}
	if !strings.Contains(err.Error(), metaFile) || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Open = %q, want it to name metadata.db and say another process holds it", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("second Open took %v to fail, want a short timeout", d)
	}
	// The first store is still usable.
	pushBlob(t, s, "repo", []byte("still works"))
}

// TestStoreConcurrent pushes blobs, chunked uploads, manifests and tags into
// a few repositories from many goroutines, reading as it goes; run it with
// -race.
func TestStoreConcurrent(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	repos := []string{"r/one", "r/two", "r/three"}
	const workers, rounds = 12, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				repo := repos[(w+i)%len(repos)]
				// Shared content: the same digest lands in several repositories at once.
				shared := []byte(fmt.Sprintf("shared layer %d", i))
				sd := digest.FromBytes(shared)
				if _, err := s.PutBlob(ctx, repo, sd, int64(len(shared)), bytes.NewReader(shared)); err != nil {
					t.Errorf("PutBlob(%s) = %v", repo, err)
					return
				}
				own := bytes.Repeat([]byte(fmt.Sprintf("worker %d round %d ", w, i)), 2000)
				up, err := s.StartUpload(ctx, repo, "")
				if err != nil {
					t.Errorf("StartUpload = %v", err)
					return
				}
				for chunk := range slices.Chunk(own, 10_000) {
					if _, err := s.AppendUpload(ctx, repo, up.ID, -1, bytes.NewReader(chunk)); err != nil {
						t.Errorf("AppendUpload = %v", err)
						return
					}
				}
				od := digest.FromBytes(own)
				if _, err := s.CommitUpload(ctx, repo, up.ID, od); err != nil {
					t.Errorf("CommitUpload = %v", err)
					return
				}
				m := testManifest(fmt.Sprintf("w%d-r%d", w, i), sd, od)
				tag := fmt.Sprintf("w%d-r%d", w, i)
				if err := s.PutManifest(ctx, repo, m, []string{tag, "latest"}); err != nil {
					t.Errorf("PutManifest = %v", err)
					return
				}
				got, err := s.GetManifest(ctx, repo, tag)
				if err != nil || got.Digest != m.Digest {
					t.Errorf("GetManifest(%s, %s) = %s, %v; want %s", repo, tag, got.Digest, err, m.Digest)
				}
				s.RecordPull(ctx, repo, m.Digest)
				if _, _, err := s.Tags(ctx, repo, "", 5); err != nil {
					t.Errorf("Tags = %v", err)
				}
				if _, err := s.Stats(ctx); err != nil {
					t.Errorf("Stats = %v", err)
				}
			}
		})
	}
	wg.Wait()

	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Repositories: len(repos), Blobs: rounds + workers*rounds, Uploads: 0}
	if st.Repositories != want.Repositories || st.Blobs != want.Blobs || st.Uploads != 0 {
		t.Errorf("Stats = %+v, want %d repositories, %d blobs, no uploads", st, want.Repositories, want.Blobs)
	}
	if keys := driverKeys(t, s, "blobs"); len(keys) != want.Blobs {
		t.Errorf("blob files = %d, want %d", len(keys), want.Blobs)
	}
	if keys := driverKeys(t, s, "uploads"); len(keys) != 0 {
		t.Errorf("upload files = %v, want none", keys)
	}
	total := 0
	for _, repo := range repos {
		tags, _, err := s.Tags(ctx, repo, "", -1)
		if err != nil {
			t.Fatal(err)
		}
		total += len(tags) - 1 // less "latest"
	}
	if total != workers*rounds {
		t.Errorf("tags across repositories = %d, want %d", total, workers*rounds)
	}
}

// TestOpenWithoutFreelist opens a metadata file written without a free list, as
// stores were before the free list was kept in the file: its content is
// there, it takes writes, and it opens again.
func TestOpenWithoutFreelist(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	d := pushBlob(t, s, "repo", []byte("before"))
	s.Close()

	db, err := bolt.Open(filepath.Join(root, metaFile), 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatalf("bolt.Open = %v", err)
	}
	// A write transaction drops the file's free list, as every commit did.
	if err := db.Update(func(tx *bolt.Tx) error { return nil }); err != nil {
		t.Fatalf("Update = %v", err)
	}
	db.Close()

	for i := range 2 {
		s := openAt(t, root)
		if got := readBlob(t, s, "repo", d); string(got) != "before" {
			t.Errorf("open %d: blob = %q, want %q", i, got, "before")
		}
		pushBlob(t, s, "repo", fmt.Appendf(nil, "after %d", i))
		s.Close()
	}
}
