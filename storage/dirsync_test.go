package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// TestCommitSyncsDirs: writes that name a directory to sync first commit
// alongside plain writes; one whose directory cannot be synced fails alone,
// without running.
func TestCommitSyncsDirs(t *testing.T) {
	s := newStore(t)
	dirs := []string{t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "missing")}
	errs := make([]error, 24)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			dir := []string{dirs[i%len(dirs)], dirs[(i+1)%2]}
			if i%4 == 3 {
				dir = nil
			}
			errs[i] = s.commit.updateAfterSync(dir, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("test"))
				if err != nil {
					return err
				}
				return b.Put(fmt.Appendf(nil, "%d", i), []byte("1"))
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		var got []byte
		s.metaDB().View(func(tx *bolt.Tx) error {
			got = tx.Bucket([]byte("test")).Get(fmt.Appendf(nil, "%d", i))
			return nil
		})
		missing := i%4 != 3 && i%len(dirs) == 2
		switch {
		case missing && !errors.Is(err, fs.ErrNotExist):
			t.Errorf("write %d, directory missing: updateAfterSync = %v, want not exist", i, err)
		case missing && got != nil:
			t.Errorf("write %d, directory missing: committed", i)
		case !missing && (err != nil || got == nil):
			t.Errorf("write %d: updateAfterSync = %v, committed %t", i, err, got != nil)
		}
	}
}

// TestPutBlobPlaces: a blob put in one call lands at its key, in a fan-out
// directory created on the way, and leaves nothing under uploads/; putting
// it again, to another repository, links it without a second copy.
func TestPutBlobPlaces(t *testing.T) {
	s := newStore(t)
	body := strings.Repeat("layer ", 1000)
	d := digest.FromString(body)
	for _, repo := range []string{"team/a", "team/b"} {
		if _, err := s.PutBlob(t.Context(), repo, d, int64(len(body)), strings.NewReader(body)); err != nil {
			t.Fatalf("PutBlob(%s) = %v", repo, err)
		}
		if _, err := s.StatBlob(t.Context(), repo, d); err != nil {
			t.Errorf("StatBlob(%s) = %v", repo, err)
		}
	}
	got, err := os.ReadFile(filepath.Join(s.root, filepath.FromSlash(blobKey(d))))
	if err != nil || string(got) != body {
		t.Errorf("blob file = %d bytes, %v; want %d bytes", len(got), err, len(body))
	}
	wrong := digest.FromString("other")
	if _, err := s.PutBlob(t.Context(), "team/a", wrong, 5, strings.NewReader("wrong")); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("PutBlob with a wrong digest = %v, want %v", err, ErrDigestMismatch)
	}
	if _, err := os.Stat(filepath.Join(s.root, filepath.FromSlash(blobKey(wrong)))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("blob file of a failed put: Stat = %v, want not exist", err)
	}
	left, err := os.ReadDir(filepath.Join(s.root, "uploads"))
	if err != nil || len(left) != 0 {
		t.Errorf("uploads/ = %v, %v; want empty", left, err)
	}
}

// TestFilesystemMoveUnsynced: a move names the directories to sync for
// its new name to be durable: the target's, and the parent of each one it
// created.
func TestFilesystemMoveUnsynced(t *testing.T) {
	f, err := NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string) {
		w, err := f.Writer(t.Context(), key, 0)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(key))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	at := func(dir string) string { return filepath.Join(f.root, filepath.FromSlash(dir)) }
	put("uploads/one")
	put("uploads/two")
	for _, tc := range []struct {
		from, to string
		want     []string
	}{
		{"uploads/one", "blobs/x/ab/one", []string{at(""), at("blobs"), at("blobs/x"), at("blobs/x/ab")}},
		{"uploads/two", "blobs/x/ab/two", []string{at("blobs/x/ab")}},
	} {
		got, err := f.moveUnsynced(tc.from, tc.to)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("moveUnsynced(%s, %s) = %q, %v; want %q", tc.from, tc.to, got, err, tc.want)
		}
		if b, err := os.ReadFile(at(tc.to)); err != nil || string(b) != tc.from {
			t.Errorf("%s holds %q, %v; want %q", tc.to, b, err, tc.from)
		}
	}
	if _, err := f.moveUnsynced("uploads/gone", "blobs/x/cd/gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("moveUnsynced of a missing file = %v, want %v", err, ErrNotFound)
	}
}

// TestEmptyBlobNameSynced: the directory an empty blob's file lands in is
// synced before the blob is recorded, whether its upload wrote a file (one
// request) or not (a session finished with no bytes), unless the file's
// own sync, after its move, makes its name durable (ext4, XFS): a blob put
// in one request then syncs no directory that was already there.
func TestEmptyBlobNameSynced(t *testing.T) {
	var mu sync.Mutex
	var synced []string
	real := syncDir
	syncDir = func(dir string) error {
		mu.Lock()
		synced = append(synced, dir)
		mu.Unlock()
		return real(dir)
	}
	defer func() { syncDir = real }()
	empty := digest.FromString("")
	for _, tc := range []struct {
		how         string
		keepsRename bool
	}{{"one request", false}, {"session", false}, {"one request", true}, {"session", true}} {
		how := tc.how
		s := newStore(t)
		s.blobs.(*Filesystem).keepsRename = tc.keepsRename
		// The fan-out directory exists, as it does for all but a
		// store's first blobs in it.
		if err := os.MkdirAll(filepath.Join(s.root, filepath.FromSlash(path.Dir(blobKey(empty)))), 0o750); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		synced = nil
		mu.Unlock()
		var err error
		if how == "one request" {
			_, err = s.PutBlob(t.Context(), "team/a", empty, 0, strings.NewReader(""))
		} else {
			var up Upload
			if up, err = s.StartUpload(t.Context(), "team/a", digest.SHA256); err == nil {
				_, err = s.FinishUpload(t.Context(), "team/a", up.ID, empty, 0, strings.NewReader(""))
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		file := filepath.Join(s.root, filepath.FromSlash(blobKey(empty)))
		if fi, err := os.Stat(file); err != nil || fi.Size() != 0 {
			t.Errorf("%s: blob file: %v", how, err)
		}
		mu.Lock()
		if skip := tc.keepsRename && how == "one request"; slices.Contains(synced, filepath.Dir(file)) == skip {
			t.Errorf("%s, file sync keeps renames %t: synced %q; want %s synced: %t", how, tc.keepsRename, synced, filepath.Dir(file), !skip)
		}
		mu.Unlock()
	}
}
