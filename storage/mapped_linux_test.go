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
	s, want := mappedStore(t)
	before := rssFile(t)
	s.mapReleased.Store(0)
	s.releaseMapped()
	after := rssFile(t)
	if before-after < 16<<20 {
		t.Errorf("RssFile %d MiB before releaseMapped, %d MiB after: want at least 16 MiB given back", before>>20, after>>20)
	}
	if got := sumMapped(s); got != want {
		t.Errorf("values after releaseMapped sum to %d, want %d", got, want)
	}
}

// TestIdleLetsGo: Idle gives back the metadata file's mapped pages and
// the journal's buffer, and the store reads and commits as before.
func TestIdleLetsGo(t *testing.T) {
	s, want := mappedStore(t)
	put := func(v string) error {
		return s.commit.update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("idle"))
			if err != nil {
				return err
			}
			return b.Put([]byte("idle"), []byte(v))
		})
	}
	// The first commit checkpoints mappedStore's, which bypassed the
	// journal; the second leaves the journal its buffer.
	for _, v := range []string{"one", "two"} {
		if err := put(v); err != nil {
			t.Fatal(err)
		}
	}
	if journalBuffer(s) == 0 {
		t.Fatal("the journal keeps no buffer after a commit: nothing to test")
	}
	before := rssFile(t)
	s.Idle()
	if after := rssFile(t); before-after < 16<<20 {
		t.Errorf("RssFile %d MiB before Idle, %d MiB after: want at least 16 MiB given back", before>>20, after>>20)
	}
	if c := journalBuffer(s); c != 0 {
		t.Errorf("after Idle the journal holds a buffer of %d bytes", c)
	}
	if got := sumMapped(s); got != want {
		t.Errorf("values after Idle sum to %d, want %d", got, want)
	}
	if err := put("three"); err != nil {
		t.Fatalf("commit after Idle: %v", err)
	}
	if c := journalBuffer(s); c == 0 {
		t.Error("the commit after Idle left the journal no buffer")
	}
}

// TestReleaseMappedIn checks that releasing the map inside a write
// transaction, halfway through reading it, gives the pages back and
// changes nothing the transaction reads or commits.
func TestReleaseMappedIn(t *testing.T) {
	s, want := mappedStore(t)
	err := s.metaDB().Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("test"))
		got := sumBucket(b)
		before := rssFile(t)
		s.mapReleased.Store(0)
		s.releaseMappedIn(tx)
		if after := rssFile(t); before-after < 16<<20 {
			t.Errorf("RssFile %d MiB before releaseMappedIn, %d MiB after: want at least 16 MiB given back", before>>20, after>>20)
		}
		if again := sumBucket(b); again != got || got != want {
			t.Errorf("values sum to %d, then %d after releaseMappedIn; want %d", got, again, want)
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, mappedValues), binary.BigEndian.AppendUint64(nil, 7))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := sumMapped(s); got != want+7 {
		t.Errorf("after the commit values sum to %d, want %d", got, want+7)
	}
}

// mappedValues is how many 8 KiB values fillMapped writes: 24 MiB.
const mappedValues = 3000

// mappedStore opens a store with mappedValues values of 8 KiB in bucket
// "test", each starting with its index, and returns it with their sum.
func mappedStore(t *testing.T) (*Store, uint64) {
	t.Helper()
	s, err := Open(t.Context(), Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	err = s.metaDB().Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("test"))
		if err != nil {
			return err
		}
		for i := range mappedValues {
			v := make([]byte, 8<<10)
			binary.BigEndian.PutUint64(v, uint64(i))
			if err := b.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, sumMapped(s)
}

func sumMapped(s *Store) (total uint64) {
	s.metaDB().View(func(tx *bolt.Tx) error {
		total = sumBucket(tx.Bucket([]byte("test")))
		return nil
	})
	return total
}

// sumBucket adds the first eight bytes of every value of b.
func sumBucket(b *bolt.Bucket) (total uint64) {
	b.ForEach(func(_, v []byte) error {
		total += binary.BigEndian.Uint64(v)
		return nil
	})
	return total
}
