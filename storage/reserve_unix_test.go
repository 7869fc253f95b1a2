//go:build unix

package storage

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAllocateRangeFillsHoles: bbolt grows its file with truncate, which
// leaves a hole; the reserve must be allocated even below the file's end.
func TestAllocateRangeFillsHoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), metaFile)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 16<<20); err != nil {
		t.Fatal(err)
	}
	if err := allocateRange(path, 4<<20, 12<<20); err != nil {
		t.Fatalf("allocateRange = %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := diskUse(t, path); got < 8<<20 || fi.Size() != 16<<20 {
		t.Errorf("after allocateRange: %d bytes allocated, size %d; want at least %d allocated, size unchanged", got, fi.Size(), 8<<20)
	}
}
