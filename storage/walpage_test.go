package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestPageUsed reads every page of a bbolt file holding buckets, nested
// buckets, values of many sizes (some spanning pages) and free pages:
// pageUsed counts each branch, leaf and free list page's header,
// elements, keys and values, and everything after it is the zeros bbolt
// writes there.
func TestPageUsed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pages.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for i := range 3 {
			b, err := tx.CreateBucket(fmt.Appendf(nil, "bucket-%d", i))
			if err != nil {
				return err
			}
			inner, err := b.CreateBucket([]byte("inner"))
			if err != nil {
				return err
			}
			inner.Put([]byte("k"), []byte("v\x00\x00")) // a value ending in zeros
			for k := range 2000 {
				v := bytes.Repeat([]byte{byte(k)}, k%97)
				if k%500 == 0 {
					v = bytes.Repeat([]byte("large"), 3000) // spans pages
				}
				if err := b.Put(fmt.Appendf(nil, "key-%05d", k), v); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("bucket-1")) }); err != nil {
		t.Fatal(err)
	}
	pageSize := db.Info().PageSize
	db.Close()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[uint16]int{}
	for at := 2 * pageSize; at+pageHeader <= len(file); {
		p := file[at:]
		span := pageSize * (1 + int(binary.NativeEndian.Uint32(p[12:])))
		if at+span > len(file) {
			t.Fatalf("page at %d runs past the file", at)
		}
		flags := binary.NativeEndian.Uint16(p[8:])
		p = p[:span]
		used := pageUsed(p, pageSize)
		switch flags {
		case branchPageFlag, leafPageFlag, freelistPageFlag:
			kinds[flags]++
			if used >= span && span == pageSize {
				t.Errorf("%#x page at %d: used %d of %d bytes", flags, at, used, span)
			}
			if i := bytes.IndexFunc(p[used:], func(r rune) bool { return r != 0 }); i >= 0 {
				t.Errorf("%#x page at %d: byte %d, after the %d bytes counted, is not zero", flags, at, used+i, used)
			}
		}
		at += span
	}
	if kinds[branchPageFlag] == 0 || kinds[leafPageFlag] == 0 || kinds[freelistPageFlag] == 0 {
		t.Fatalf("pages read by kind: %v, want branch, leaf and free list pages", kinds)
	}
	// Writes that are not one whole page are logged whole.
	for _, b := range [][]byte{nil, make([]byte, 10), make([]byte, pageSize+1), file[:pageSize]} {
		if got := pageUsed(b, pageSize); got != len(b) {
			t.Errorf("pageUsed of %d bytes that are not a branch, leaf or free list page = %d, want all", len(b), got)
		}
	}
}

// TestJournalLogsUsedBytes: a commit's record holds, of each page it
// wrote, only the bytes bbolt reads, not the zeros after them.
func TestJournalLogsUsedBytes(t *testing.T) {
	s := newStore(t)
	putManifest(t, s, "app", testManifest("one"), "one")
	var written, used, logged int
	s.commit.walMu.Lock()
	pageSize := s.commit.wal.pageSize
	s.commit.wal.trace = func(file string, off int64, b []byte) {
		switch {
		case b == nil:
		case file == metaFile && !isMetaWrite(off, len(b), pageSize):
			written += len(b)
			used += pageUsed(b, pageSize)
		case file == walFile && off >= walStart:
			logged += len(b)
		}
	}
	s.commit.walMu.Unlock()
	putManifest(t, s, "app", testManifest("two"), "two")
	if written == 0 || logged == 0 {
		t.Fatalf("traced %d bytes of pages and %d of journal, want both", written, logged)
	}
	if logged >= written {
		t.Errorf("journal record of %d bytes for %d bytes of pages (%d of them read by bbolt), want the pages' used bytes only", logged, written, used)
	}
	t.Logf("pages %d bytes, of which bbolt reads %d; record %d bytes", written, used, logged)
}

// FuzzPageUsed: pageUsed reads any bytes without panicking and counts at
// most all of them.
func FuzzPageUsed(f *testing.F) {
	page := make([]byte, 4096)
	page[8], page[10] = leafPageFlag, 1
	f.Add(page)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, size := range []int{4096, 512, 16} {
			if n := pageUsed(b, size); n < 0 || n > len(b) {
				t.Fatalf("pageUsed(%d bytes, %d) = %d", len(b), size, n)
			}
		}
	})
}
