//go:build unix

package storage

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

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

// TestCompactionKeepsOwner: a metadata file compacted by a command run as
// root (`sudo registry compact`) stays its owner's.
func TestCompactionKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot give files to another user")
	}
	root := t.TempDir()
	s := openAt(t, root)
	compactImage(t, s, "a/b", "v1", 1)
	path := filepath.Join(root, metaFile)
	const uid, gid = 4321, 4322
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid || fi.Mode().Perm() != 0o640 {
		t.Errorf("%s: owner %d:%d, mode %v; want %d:%d, -rw-r-----", metaFile, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid)
	}
}
