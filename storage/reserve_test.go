package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nora-registry/nora/storage/disktest"
)

// bigManifest is a manifest of n bytes: its record takes new contiguous
// pages at the end of the metadata file.
func bigManifest(name string, n int) Manifest {
	return testManifest(name + strings.Repeat(" ", n))
}

// TestMetadataReserveOnFullDisk: with the disk full of something else,
// metadata writes that need the metadata file to grow still commit (a GC
// pass deleting what fills the disk needs them), and once the reserve is
// used up, writes fail with ErrStorageFull.
func TestMetadataReserveOnFullDisk(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	disktest.MountTmpfs(t, root, 32<<20)
	s := openAt(t, root)
	defer s.Close()
	disktest.Fill(t, filepath.Join(root, "filler"))
	for i := range 3 {
		if err := s.PutManifest(t.Context(), "app", bigManifest(fmt.Sprint(i), 1<<20), []string{"v1"}); err != nil {
			t.Fatalf("PutManifest of 1 MiB #%d on a full disk = %v, want the metadata reserve to take it", i, err)
		}
	}
	err := s.PutManifest(t.Context(), "app", bigManifest("huge", 16<<20), nil)
	if !errors.Is(err, ErrStorageFull) {
		t.Fatalf("PutManifest of 16 MiB on a full disk = %v, want ErrStorageFull", err)
	}
	os.Remove(filepath.Join(root, "filler"))
	if err := s.PutManifest(t.Context(), "app", bigManifest("after", 1<<20), nil); err != nil {
		t.Fatalf("PutManifest once space is back = %v", err)
	}
	// The reserve is refilled by a write once space is back, after the
	// pause that follows a failed refill.
	deadline := time.Now().Add(3 * reserveRetry)
	for i := 0; ; i++ {
		var data int64
		s.metaDB().View(func(tx *bolt.Tx) error { data = tx.Size(); return nil })
		fi, err := os.Stat(filepath.Join(root, metaFile))
		if err == nil && fi.Size() >= data+reserveSize(data) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metadata.db holds %d bytes past its %d of data, want the reserve of %d refilled", fi.Size()-data, data, reserveSize(data))
		}
		time.Sleep(100 * time.Millisecond)
		putManifest(t, s, "app", testManifest(fmt.Sprint("refill ", i)))
	}
}
