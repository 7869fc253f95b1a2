package storage

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// rssFile is this process's file-backed resident memory, in bytes.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestReleaseMapped checks that after a scan of the whole metadata file
// releaseMapped gives its pages back, and that they read the same after.
func TestReleaseMapped(t *testing.T) {
	s, err := Open(t.Context(), Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n, size = 3000, 8 << 10 // 24 MiB of values
	s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("test"))
		if err != nil {
			return err
		}
		for i := range n {
			v := make([]byte, size)
			binary.BigEndian.PutUint64(v, uint64(i))
			if err := b.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), v); err != nil {
				return err
			}
		}
		return nil
	})
	sum := func() (total uint64) {
		s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("test")).ForEach(func(_, v []byte) error {
				total += binary.BigEndian.Uint64(v)
				return nil
			})
		})
		return total
	}
	want := sum()
	before := rssFile(t)
	s.mapReleased.Store(0)
	s.releaseMapped()
	after := rssFile(t)
	if before-after < 16<<20 {
		t.Errorf("RssFile %d MiB before releaseMapped, %d MiB after: want at least 16 MiB given back", before>>20, after>>20)
	}
	if got := sum(); got != want {
		t.Errorf("values after releaseMapped sum to %d, want %d", got, want)
	}
}
