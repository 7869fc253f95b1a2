package storage

import (
	"os"
	"path/filepath"
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
