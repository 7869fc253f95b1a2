package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// dumpMeta lists every bucket, sequence, key and value of db.
func dumpMeta(t *testing.T, db *bolt.DB) []string {
	t.Helper()
	var out []string
	var walk func(path string, b *bolt.Bucket)
	walk = func(path string, b *bolt.Bucket) {
		out = append(out, fmt.Sprintf("%s seq=%d", path, b.Sequence()))
		b.ForEach(func(k, v []byte) error {
			if v == nil && b.Bucket(k) != nil {
				walk(fmt.Sprintf("%s/%x", path, k), b.Bucket(k))
				return nil
			}
			out = append(out, fmt.Sprintf("%s %x=%x", path, k, v))
			return nil
		})
	}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			walk(string(name), b)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkMeta runs bbolt's consistency check on db.
func checkMeta(t *testing.T, db *bolt.DB) {
	t.Helper()
	db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	})
}

// compactImage pushes a one-manifest image to repo, tagged tag.
func compactImage(t *testing.T, s *Store, repo, tag string, i int) {
	t.Helper()
	content := fmt.Appendf(nil, `{"schemaVersion":2,"name":%q,"n":%d}`, repo, i)
	m := Manifest{Digest: digest.FromBytes(content), MediaType: ocispec.MediaTypeImageManifest, Content: content}
	if err := s.PutManifest(t.Context(), repo, m, []string{tag}); err != nil {
		t.Errorf("PutManifest(%s:%s) = %v", repo, tag, err)
	}
}

// TestCompact compacts a store grown by concurrent pushes while writers
// and readers go on, with writes made at each stage of the compaction:
// between the chunks of the copy, after it, and just before writers are
// held, one of them growing the file past bbolt's map. The new file must
// hold exactly what the old one held when it was replaced, be smaller,
// pass bbolt's check, and keep, after a reopen, what was written since.
func TestCompact(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	fillGCData(t, s, 0, 1500)
	// A nested bucket and a top-level bucket that goes away, which the
	// store's own layout does not have.
	err := s.commit.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("test"))
		if err != nil {
			return err
		}
		in, err := b.CreateBucketIfNotExists([]byte("inner"))
		if err != nil {
			return err
		}
		in.SetSequence(7)
		for i := range 50 {
			in.Put(fmt.Appendf(nil, "k%02d", i), []byte("v"))
		}
		_, err = tx.CreateBucketIfNotExists([]byte("gone"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The old file, kept under another name when the new one replaces it.
	path := filepath.Join(root, metaFile)
	if err := os.Link(path, path+".old"); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var pushed atomic.Int64
	wg.Go(func() { // a writer until writers are held
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			compactImage(t, s, fmt.Sprintf("live/r%d", i%7), fmt.Sprintf("t%d", i), i)
			pushed.Add(1)
		}
	})
	var reads atomic.Int64
	readDone := make(chan struct{})
	wg.Go(func() { // a reader throughout
		for i := 0; ; i++ {
			select {
			case <-readDone:
				return
			default:
			}
			k := 2 + 2*i%1498 // tags v2, v4… (fillGCData); v0 goes
			if _, err := s.GetManifest(t.Context(), fmt.Sprintf("team/app%03d", k%100), fmt.Sprintf("v%d", k)); err != nil {
				t.Errorf("GetManifest during compaction = %v", err)
				return
			}
			reads.Add(1)
		}
	})
	defer func(n int) { compactBatch = n }(compactBatch)
	compactBatch = 97 // many chunks, with pushes between them
	compactStage = func(stage string) {
		switch stage {
		case "copied":
			// A commit that grows the file past bbolt's map, which
			// remaps it: that waits for every read transaction, with
			// writers held. A compaction holding one here, or waiting
			// for writers with one open, would never finish.
			grown := make(chan struct{})
			go func() {
				s.commit.update(func(tx *bolt.Tx) error {
					b, err := tx.CreateBucketIfNotExists([]byte("big"))
					if err != nil {
						return err
					}
					return b.Put([]byte("v"), make([]byte, 40<<20))
				})
				close(grown)
			}()
			select {
			case <-grown:
			case <-time.After(5 * time.Second):
				t.Error("a commit that remaps the file waited 5s for the compaction")
			}
			compactImage(t, s, "stage/copied", "a", 1)
			if err := s.DeleteTag(t.Context(), "team/app000", "v0"); err != nil {
				t.Error(err)
			}
			s.commit.update(func(tx *bolt.Tx) error {
				in := tx.Bucket([]byte("test")).Bucket([]byte("inner"))
				in.Delete([]byte("k03"))
				in.SetSequence(8)
				return tx.DeleteBucket([]byte("gone"))
			})
		case "synced":
			close(stop)
			s.commit.update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("big")) })
			compactImage(t, s, "stage/synced", "b", 2)
			s.commit.update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("added"))
				if err != nil {
					return err
				}
				return b.Put([]byte("x"), []byte("y"))
			})
		}
	}
	defer func() { compactStage = nil }()
	var res CompactResult
	compacted := make(chan struct{})
	go func() { res, err = s.Compact(t.Context()); close(compacted) }()
	select {
	case <-compacted:
	case <-time.After(2 * time.Minute):
		panic("Compact still runs after 2 minutes: a deadlock")
	}
	close(readDone)
	wg.Wait()
	if err != nil {
		t.Fatalf("Compact = %v", err)
	}
	t.Logf("%d -> %d bytes, took %s, writes held %s; %d pushes and %d reads during it", res.Before, res.After, res.Took, res.Held, pushed.Load(), reads.Load())
	if pushed.Load() == 0 {
		t.Error("no push during the compaction")
	}
	if res.After >= res.Before*9/10 {
		t.Errorf("compaction took %d bytes to %d, want at least a tenth less", res.Before, res.After)
	}
	// The new file has its disk-full reserve from the start.
	if got, want := diskUse(t, path), res.After+reserveSize(res.After)/2; got < want {
		t.Errorf("compacted file takes %d bytes on disk, want at least %d: its reserve", got, want)
	}
	old, err := bolt.Open(path+".old", 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	want := dumpMeta(t, old)
	old.Close()
	got := dumpMeta(t, s.metaDB())
	if !slices.Equal(got, want) {
		t.Errorf("compacted file differs from the file it replaced: %d records, want %d", len(got), len(want))
		for _, r := range got {
			if !slices.Contains(want, r) {
				t.Errorf("  extra %s", r)
			}
		}
		for _, r := range want {
			if !slices.Contains(got, r) {
				t.Errorf("  missing %s", r)
			}
		}
	}
	checkMeta(t, s.metaDB())

	// Commits after the swap go to the new file and its journal.
	compactImage(t, s, "after/compact", "c", 3)
	s.Close()
	s = openAt(t, root)
	defer s.Close()
	for _, ref := range [][2]string{{"stage/copied", "a"}, {"stage/synced", "b"}, {"after/compact", "c"}, {"live/r0", "t0"}} {
		if _, err := s.GetManifest(t.Context(), ref[0], ref[1]); err != nil {
			t.Errorf("GetManifest(%s:%s) after reopen = %v", ref[0], ref[1], err)
		}
	}
	if _, err := s.GetManifest(t.Context(), "team/app000", "v0"); err == nil {
		t.Error("tag deleted during the copy is back after compaction")
	}
	checkMeta(t, s.metaDB())
}

// TestCompactLeftover: a new file a crash left before it was put in place
// is removed at the next Open, and the store is as it was.
func TestCompactLeftover(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	compactImage(t, s, "a/b", "v1", 1)
	s.Close()
	left := filepath.Join(root, metaFile+compactSuffix)
	if err := os.WriteFile(left, []byte("half a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, root)
	defer s.Close()
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("%s after Open: %v, want it removed", left, err)
	}
	if _, err := s.GetManifest(t.Context(), "a/b", "v1"); err != nil {
		t.Errorf("GetManifest = %v", err)
	}
}

// TestCompactClosed: a compaction after Close fails and changes nothing.
func TestCompactClosed(t *testing.T) {
	s := openAt(t, t.TempDir())
	s.Close()
	if _, err := s.Compact(t.Context()); err != errStoreClosed {
		t.Errorf("Compact after Close = %v, want %v", err, errStoreClosed)
	}
}

// TestKeepCompact: the server's compactor compacts a file grown by pushes
// when woken, and leaves a compacted one alone.
func TestKeepCompact(t *testing.T) {
	defer func(min int64) { minCompact = min }(minCompact)
	minCompact = 0
	s := newStore(t)
	fillGCData(t, s, 0, 1000)
	data, compacted := s.compactEstimate(true, 0)
	if float64(compacted) > float64(data)*(1-compactWaste) {
		t.Fatalf("estimate %d of %d bytes: a grown file should be worth compacting", compacted, data)
	}
	reports := make(chan CompactResult, 4)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		s.KeepCompact(ctx, func(res CompactResult, err error) {
			if err != nil {
				t.Error(err)
			}
			reports <- res
		})
		close(done)
	}()
	defer func() { cancel(); <-done }()
	s.WakeCompactor()
	select {
	case res := <-reports:
		t.Logf("%d -> %d bytes (estimated %d)", res.Before, res.After, compacted)
		if res.After >= res.Before {
			t.Errorf("compacted %d -> %d bytes", res.Before, res.After)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no compaction 30s after WakeCompactor")
	}
	if data, compacted := s.compactEstimate(true, 0); float64(compacted) <= float64(data)*(1-compactWaste) {
		t.Errorf("estimate %d of %d bytes right after a compaction: it would compact again", compacted, data)
	}
}
