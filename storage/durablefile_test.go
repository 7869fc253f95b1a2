package storage

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWriteFileDurable: the file holds the new bytes with the given
// permissions, a second write replaces them whole, the directory is
// synced, and no temporary file is left behind.
func TestWriteFileDurable(t *testing.T) {
	var synced []string
	real := syncDir
	syncDir = func(dir string) error {
		synced = append(synced, dir)
		return real(dir)
	}
	defer func() { syncDir = real }()
	dir := t.TempDir()
	path := filepath.Join(dir, "token.key")
	for _, body := range []string{"first", "second, longer"} {
		if err := WriteFileDurable(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != body {
			t.Errorf("file holds %q, %v; want %q", got, err, body)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if len(synced) != 2 || synced[0] != dir {
		t.Errorf("directories synced: %q; want %s after each write", synced, dir)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
	if err := WriteFileDurable(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Error("WriteFileDurable into a missing directory succeeded")
	}
}

// TestWriteFileDurableLeftovers: a temporary file a crash left between
// its create and its rename (it may hold a key) is removed by the next
// write of that path; other files, and another path's, stay.
func TestWriteFileDurableLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ui.key")
	stale := []string{".ui.key.123456789", ".ui.key.2"}
	kept := []string{".ui.key.bak", ".ui.key.", ".ui.keys.1", ".token.key.1", "ui.key.1"}
	for _, name := range append(append([]string{}, stale...), kept...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".ui.key.3"), 0o700); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, ".ui.key.3", "ui.key")
	if err := WriteFileDurable(path, []byte("new key"), 0o600); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	slices.Sort(left)
	slices.Sort(kept)
	if !slices.Equal(left, kept) {
		t.Errorf("directory holds %q, want %q", left, kept)
	}
}
