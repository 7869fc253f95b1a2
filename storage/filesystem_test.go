package storage

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func newTestFilesystem(t *testing.T) *Filesystem {
	fsd, err := NewFilesystem(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatalf("NewFilesystem = %v", err)
	}
	return fsd
}

func TestFilesystemDriver(t *testing.T) {
	testDriver(t, func(t *testing.T) Driver { return newTestFilesystem(t) })
}

// TestFilesystemKeysStayInRoot checks that no key, however formed, reads
// or writes outside the root: Store builds keys from ids and digests, and
// this is the last line if one ever slips through unchecked.
func TestFilesystemKeysStayInRoot(t *testing.T) {
	ctx := t.Context()
	fsd := newTestFilesystem(t)
	parent := filepath.Dir(fsd.root)
	secret := filepath.Join(parent, "secret")
	if err := os.WriteFile(secret, []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../secret", "uploads/../../secret", "/../secret", "a/../../../secret"} {
		if rc, err := fsd.Reader(ctx, key, 0); err == nil {
			rc.Close()
			t.Errorf("Reader(%q) opened a file outside the root", key)
		}
		w, err := fsd.Writer(ctx, key, 0)
		if err != nil {
			t.Fatalf("Writer(%q) = %v", key, err)
		}
		w.Write([]byte("overwritten"))
		if err := w.Commit(); err != nil {
			t.Fatalf("Commit(%q) = %v", key, err)
		}
		fsd.Delete(ctx, key)
	}
	if data, err := os.ReadFile(secret); err != nil || string(data) != "outside" {
		t.Errorf("file beside the root = %q, %v; want it untouched", data, err)
	}
	err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != parent && p != secret && !strings.HasPrefix(p, fsd.root) {
			t.Errorf("driver created %s outside its root", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFilesystemWalkKeys checks that Walk reports slash-separated keys
// relative to the root, the form the other methods accept.
func TestFilesystemWalkKeys(t *testing.T) {
	ctx := t.Context()
	fsd := newTestFilesystem(t)
	putObject(t, fsd, "blobs/sha256/ab/abcd", []byte("x"))
	var keys []string
	if err := fsd.Walk(ctx, "blobs", func(key string, _ int64) error {
		keys = append(keys, key)
		return nil
	}); err != nil {
		t.Fatalf("Walk = %v", err)
	}
	if len(keys) != 1 || keys[0] != "blobs/sha256/ab/abcd" {
		t.Fatalf("Walk(blobs) = %q, want [blobs/sha256/ab/abcd]", keys)
	}
	if _, err := fsd.Stat(ctx, keys[0]); err != nil {
		t.Errorf("Stat(walked key) = %v", err)
	}
}

// TestFilesystemCommitPersists checks that committed bytes are in the file
// a fresh driver on the same root reads.
func TestFilesystemCommitPersists(t *testing.T) {
	fsd := newTestFilesystem(t)
	putObject(t, fsd, "uploads/persist", []byte("durable"))
	again, err := NewFilesystem(fsd.root)
	if err != nil {
		t.Fatal(err)
	}
	wantObject(t, again, "uploads/persist", []byte("durable"))
}

// TestMakeDirs: makeDirs returns the parent of each directory it made,
// outermost first, so that a move can make its new directories durable
// (a blob's first fan-out directory, say), and nothing for one that
// exists.
func TestMakeDirs(t *testing.T) {
	root := t.TempDir()
	at := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"blobs/sha256/ab", []string{root, at("blobs"), at("blobs/sha256")}},
		{"blobs/sha256/cd", []string{at("blobs/sha256")}},
		{"blobs/sha256/cd", nil},
	} {
		got, err := makeDirs(at(tc.dir))
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("makeDirs(%s) = %q, %v; want %q", tc.dir, got, err, tc.want)
		}
		if fi, err := os.Stat(at(tc.dir)); err != nil || !fi.IsDir() {
			t.Errorf("%s after makeDirs: %v", tc.dir, err)
		}
	}
	if err := os.WriteFile(at("file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := makeDirs(at("file/sub")); err == nil {
		t.Error("makeDirs under a file = nil, want an error")
	}
}
