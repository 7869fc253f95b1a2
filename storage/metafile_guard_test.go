package storage

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// TestFormat1AtMetadataDBRefused: a format 1 file in metadata.db's place
// (an old backup restored under the new name) is refused. Read as format
// 2 it would show no repository, and GC would delete every blob.
func TestFormat1AtMetadataDBRefused(t *testing.T) {
	root := fixtureRoot(t)
	if err := os.Rename(filepath.Join(root, legacyFile), filepath.Join(root, metaFile)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), Config{Driver: "filesystem", Root: root})
	if err == nil {
		s.Close()
		t.Fatal("Open(a format 1 file as metadata.db) = nil error, want it refused")
	}
	if !strings.Contains(err.Error(), "metadata.db holds metadata of format 1: move it to meta.db") {
		t.Errorf("Open(a format 1 file as metadata.db) = %v, want it to say to move it to meta.db", err)
	}
}

// TestLegacyWrittenAfterConversionRefused: after a crash between the
// conversion and the text replacing meta.db, an earlier release may run on
// meta.db, which is meta.db.v1 by a hard link. What it wrote must not be
// dropped by writing the text over it.
func TestLegacyWrittenAfterConversionRefused(t *testing.T) {
	root := fixtureRoot(t)
	legacy := filepath.Join(root, legacyFile)
	db, err := bolt.Open(legacy, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := upgradeFile(db, legacy, filepath.Join(root, metaFile)); err != nil {
		t.Fatal(err)
	}
	db.Close() // the crash, before the text
	d := digest.FromString("pushed by an earlier release")
	db, err = bolt.Open(legacy, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("blobs")).Put([]byte(d), []byte(`{"size":28,"created":1}`))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(t.Context(), Config{Driver: "filesystem", Root: root})
	if err == nil {
		s.Close()
		t.Fatal("Open(meta.db written after its conversion) = nil error, want it refused")
	}
	if !strings.Contains(err.Error(), "was written after its conversion") {
		t.Errorf("Open(meta.db written after its conversion) = %v, want it to say so", err)
	}
	if kind, _ := legacyKind(legacy); kind != legacyDB {
		t.Errorf("meta.db is %v after the refusal, want the format 1 file left as it is", kind)
	}

	// Untouched since the crash, the conversion finishes.
	root = fixtureRoot(t)
	legacy = filepath.Join(root, legacyFile)
	db, err = bolt.Open(legacy, 0o600, metaOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := upgradeFile(db, legacy, filepath.Join(root, metaFile)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(t.Context(), Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatalf("Open(meta.db untouched since its conversion) = %v, want the text written and the store open", err)
	}
	s.Close()
	if kind, _ := legacyKind(legacy); kind != legacyStub {
		t.Errorf("meta.db is %v, want the text", kind)
	}
}

// TestConversionKeepsOwner: a store converted by a command run as root
// (`sudo registry gc`) stays its owner's, whose server must open it.
func TestConversionKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot give files to another user")
	}
	root := fixtureRoot(t)
	legacy := filepath.Join(root, legacyFile)
	const uid, gid = 4321, 4322
	if err := os.Chown(legacy, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(legacy, 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := OpenExisting(t.Context(), Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, name := range []string{metaFile, legacyFile, legacyFile + ".v1"} {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: owner %d:%d, mode %v; want %d:%d, -rw-r-----", name, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid)
		}
	}
}
