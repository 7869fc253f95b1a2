package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

func TestJournalHooks(t *testing.T) {
	root := t.TempDir()
	openAt(t, root).Close()
	s := openAt(t, root)
	defer s.Close()
	if s.commit.wal == nil || !s.metaDB().NoSync {
		t.Fatal("the store opened without its journal: hookWrites no longer sees this bbolt's writes")
	}
	// An existing store opens without writing its journal.
	if fi, err := os.Stat(filepath.Join(root, walFile)); err != nil || fi.Size() != 0 {
		t.Errorf("journal after an open that committed nothing: %v, %v; want empty", fi.Size(), err)
	}
}

// walEvent is a write to one of the metadata files, or a sync (data nil).
type walEvent struct {
	file string
	off  int64
	data []byte
}

// tagOp is an answered tag change: the tag names digest d, or none.
type tagOp struct {
	event     int // events traced before it was answered
	repo, tag string
	d         digest.Digest
}

// TestJournalPowerLoss cuts the power, on paper, at many points of a run
// of tag pushes and deletions: each file keeps what it held at its last
// sync, plus any of the writes since, whole, torn at a sector, or lost.
// Every such state must open as a consistent file that holds every
// answered change.
func TestJournalPowerLoss(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	base := map[string][]byte{}
	for _, f := range []string{metaFile, walFile} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		base[f] = b
	}
	var events []walEvent
	s.commit.walMu.Lock()
	s.commit.wal.limit = 48 << 10 // checkpoints every few commits
	s.commit.wal.trace = func(file string, off int64, b []byte) {
		events = append(events, walEvent{file, off, bytes.Clone(b)})
	}
	s.commit.walMu.Unlock()

	var ops []tagOp
	for i := range 240 {
		repo, tag := fmt.Sprintf("r%d", i%7), fmt.Sprintf("t%d", i%60)
		m := testManifest(fmt.Sprintf("m%d", i))
		putManifest(t, s, repo, m, tag)
		ops = append(ops, tagOp{len(events), repo, tag, m.Digest})
		if i%4 == 3 {
			old := fmt.Sprintf("t%d", (i-2)%60)
			if err := s.DeleteTag(t.Context(), repo, old); err != nil && !errors.Is(err, ErrManifestNotFound) {
				t.Fatalf("DeleteTag = %v", err)
			}
			ops = append(ops, tagOp{len(events), repo, old, ""})
		}
	}
	s.commit.walMu.Lock()
	s.commit.wal.trace = nil
	s.commit.walMu.Unlock()
	checkpoints := 0
	for _, e := range events {
		if e.file == metaFile && e.data == nil {
			checkpoints++
		}
	}
	if checkpoints < 3 {
		t.Fatalf("%d checkpoints in the run, want several", checkpoints)
	}
	stub, err := os.ReadFile(filepath.Join(root, legacyFile))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, metaFile))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(15, 2))
	for trial := range 60 {
		cut := rng.IntN(len(events) + 1)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, legacyFile), stub, 0o600)
		lost := map[string][]byte{}
		for f, b := range base {
			b = powerLoss(b, events[:cut], f, rng)
			if f == metaFile && int64(len(b)) < fi.Size() {
				b = append(b, make([]byte, fi.Size()-int64(len(b)))...) // growth is synced
			}
			lost[f] = b
		}
		if trial%2 == 1 {
			scribbleTails(lost[metaFile], lost[walFile])
		}
		for f, b := range lost {
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(fmt.Sprintf("cut%d-at%d", trial, cut), func(t *testing.T) {
			checkAnswered(t, openAt(t, dir), ops, cut)
		})
	}
}

// powerLoss returns file f's bytes after a power cut once events ran:
// its bytes at its last sync, then each later write kept whole, lost,
// or torn (some of its 512-byte sectors kept).
func powerLoss(b []byte, events []walEvent, f string, rng *rand.Rand) []byte {
	b = bytes.Clone(b)
	synced := 0
	for i, e := range events {
		if e.file == f && e.data == nil {
			synced = i
		}
	}
	for i, e := range events {
		if e.file != f || e.data == nil {
			continue
		}
		if end := int(e.off) + len(e.data); end > len(b) {
			b = append(b, make([]byte, end-len(b))...)
		}
		if i < synced {
			copy(b[e.off:], e.data)
			continue
		}
		switch rng.IntN(3) {
		case 0:
			copy(b[e.off:], e.data)
		case 1:
			for s := 0; s < len(e.data); s += 512 {
				if rng.IntN(2) == 0 {
					copy(b[int(e.off)+s:], e.data[s:min(s+512, len(e.data))])
				}
			}
		}
	}
	return b
}

// scribbleTails fills the rest of each page the journal wal logs part of,
// in the metadata file meta, with bytes bbolt never wrote: what a torn
// write can leave in the part of a page that recovery does not write.
func scribbleTails(meta, wal []byte) {
	h, ok := readWALHeader(wal)
	if !ok {
		return
	}
	walRecords(wal, h.epoch, h.pageSize, func(off int64, data []byte) {
		end := int(off) + len(data)
		for i := end; i < len(meta) && i%h.pageSize != 0; i++ {
			meta[i] = 0xa5
		}
	})
}

// checkAnswered checks that s is consistent and that every tag whose
// changes were all answered by the cut holds its last one.
func checkAnswered(t *testing.T, s *Store, ops []tagOp, cut int) {
	defer s.Close()
	if err := s.metaDB().View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("recovered file fails bbolt's check: %v", err)
	}
	want := map[[2]string]digest.Digest{}
	for _, op := range ops {
		k := [2]string{op.repo, op.tag}
		if op.event > cut {
			want[k] = "?"
			continue
		}
		if want[k] != "?" {
			want[k] = op.d
		}
	}
	for k, d := range want {
		if d == "?" {
			continue
		}
		m, err := s.GetManifest(t.Context(), k[0], k[1])
		switch {
		case d == "" && !errors.Is(err, ErrManifestNotFound):
			t.Errorf("%s:%s after recovery = %v, %v; want it deleted", k[0], k[1], m.Digest, err)
		case d != "" && (err != nil || m.Digest != d):
			t.Errorf("%s:%s after recovery = %v, %v; want %s", k[0], k[1], m.Digest, err, d)
		}
	}
}

// TestJournalStale opens a metadata file beside a journal that is not
// its own: the journal is set aside and the file opens as it is.
func TestJournalStale(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	first := testManifest("first")
	putManifest(t, s, "app", first, "first")
	s.Close()
	backup := copyFiles(t, root, t.TempDir())
	s = openAt(t, root)
	putManifest(t, s, "app", testManifest("between"), "between")
	s.Close()
	s = openAt(t, root)
	second := testManifest("second")
	putManifest(t, s, "app", second, "second")
	crashed := copyFiles(t, root, t.TempDir()) // as a kill leaves them: the journal holds the commit
	s.Close()

	t.Run("metadata.db restored from a backup", func(t *testing.T) {
		dir := copyFiles(t, crashed, t.TempDir())
		copyFile(t, filepath.Join(backup, metaFile), filepath.Join(dir, metaFile))
		s := openAt(t, dir)
		defer s.Close()
		wantTags(t, s, "app", "first")
		if _, err := os.Stat(filepath.Join(dir, walFile+".stale")); err != nil {
			t.Errorf("stale journal not set aside: %v", err)
		}
	})
	t.Run("metadata.db written since without the journal", func(t *testing.T) {
		dir := copyFiles(t, crashed, t.TempDir())
		db, err := bolt.Open(filepath.Join(dir, metaFile), 0o600, metaOptions())
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"x", "y"} {
			if err := db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists(bucketRobots)
				if err != nil {
					return err
				}
				return b.Put([]byte(name), []byte(`{"name":"`+name+`"}`))
			}); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		s := openAt(t, dir)
		defer s.Close()
		wantTags(t, s, "app", "between", "first", "second")
		if robots, err := s.Robots(t.Context()); err != nil || len(robots) != 2 {
			t.Errorf("Robots = %v, %v; want the two written without the journal", robots, err)
		}
	})
}

func wantTags(t *testing.T, s *Store, repo string, want ...string) {
	t.Helper()
	tags, _, err := s.Tags(t.Context(), repo, "", 100)
	if err != nil || fmt.Sprint(tags) != fmt.Sprint(want) {
		t.Errorf("Tags(%s) = %v, %v; want %v", repo, tags, err, want)
	}
}

func copyFiles(t *testing.T, from, to string) string {
	t.Helper()
	for _, f := range []string{metaFile, walFile, legacyFile} {
		copyFile(t, filepath.Join(from, f), filepath.Join(to, f))
	}
	return to
}

// TestJournalHeldByItsStore opens a store a second time while the first
// has commits in its journal: the second fails as busy without touching
// the journal, which a recovery would have written into the live file.
func TestJournalHeldByItsStore(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	defer s.Close()
	putManifest(t, s, "app", testManifest("one"), "one")
	before, err := os.ReadFile(filepath.Join(root, walFile))
	if err != nil || len(before) <= walStart {
		t.Fatalf("journal = %d bytes, %v; want a record in it", len(before), err)
	}
	if _, err := Open(t.Context(), Config{Driver: "filesystem", Root: root}); !errors.Is(err, ErrStoreBusy) {
		t.Fatalf("second Open = %v, want ErrStoreBusy", err)
	}
	after, _ := os.ReadFile(filepath.Join(root, walFile))
	if !bytes.Equal(before, after) {
		t.Errorf("a refused second Open changed the journal")
	}
	putManifest(t, s, "app", testManifest("two"), "two")
	wantTags(t, s, "app", "one", "two")
}

// TestJournalWriteAround commits once around the journal, as a write that
// bypassed the committer would: the next commit checkpoints first, so
// every later record follows a durable state.
func TestJournalWriteAround(t *testing.T) {
	s := newStore(t)
	putManifest(t, s, "app", testManifest("one"), "one")
	syncs := 0
	s.commit.walMu.Lock()
	s.commit.wal.trace = func(file string, off int64, b []byte) {
		if file == metaFile && b == nil {
			syncs++
		}
	}
	s.commit.walMu.Unlock()
	if err := s.metaDB().Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRobots)
		if err != nil {
			return err
		}
		return b.Put([]byte("around"), []byte(`{"name":"around"}`))
	}); err != nil {
		t.Fatal(err)
	}
	putManifest(t, s, "app", testManifest("two"), "two")
	if syncs != 1 {
		t.Errorf("metadata.db synced %d times by the commit after a write around the journal, want 1", syncs)
	}
}

// FuzzJournal reads journals of any content: recovery never panics, and
// reads only entries inside their record. The fuzzed bytes are a whole
// journal and, to get past the checksums, a record's entries, which are
// given a valid record header.
func FuzzJournal(f *testing.F) {
	f.Add([]byte{}, binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint64(nil, 8192), 3))
	f.Add(make([]byte, walStart), []byte("abc"))
	f.Fuzz(func(t *testing.T, raw, entries []byte) {
		h := walHeader{seq: 1, epoch: 7, pageSize: 4096, meta: make([]byte, walMetaLen)}
		j := append(make([]byte, walSlot), encodeWALHeader(h)...)
		head := binary.LittleEndian.AppendUint64(nil, h.epoch)
		head = binary.LittleEndian.AppendUint32(head, uint32(len(entries)))
		head = binary.LittleEndian.AppendUint32(head, crc32.Update(crc32.Checksum(head, walCRC), walCRC, entries))
		for _, b := range [][]byte{raw, append(append(j, head...), entries...)} {
			h, ok := readWALHeader(b)
			if !ok {
				continue
			}
			walRecords(b, h.epoch, h.pageSize, func(off int64, data []byte) {
				if off < 0 || len(data) > len(b) {
					t.Fatalf("entry at %d of %d bytes from a journal of %d", off, len(data), len(b))
				}
			})
		}
	})
}

// journalBuffer is the capacity of s's journal's buffer for a commit's
// writes.
func journalBuffer(s *Store) int {
	s.commit.walMu.Lock()
	defer s.commit.walMu.Unlock()
	return cap(s.commit.wal.rec)
}

// TestJournalLetsGoOfLargeRecords: the copy of a large commit's writes (an
// audit batch's, several MiB) is not kept once the commit is durable, where
// an idle server would hold it; a small one's is, for the next commit.
func TestJournalLetsGoOfLargeRecords(t *testing.T) {
	s := newStore(t)
	putManifest(t, s, "app", testManifest("one"), "one")
	if c := journalBuffer(s); c == 0 || c > walKeepRecord {
		t.Fatalf("after a tag's commit the journal holds %d bytes, want a copy of at most %d kept", c, walKeepRecord)
	}
	entries := make([]AuditEntry, 8192)
	for i := range entries {
		entries[i] = AuditEntry{Kind: AuditPush, Repository: "app", Reference: fmt.Sprintf("tag-%05d", i), Detail: string(bytes.Repeat([]byte("d"), 200))}
	}
	if err := s.AppendAudit(t.Context(), entries); err != nil {
		t.Fatal(err)
	}
	if c := journalBuffer(s); c > walKeepRecord {
		t.Errorf("after a %d-entry audit batch the journal holds %d bytes, want at most %d", len(entries), c, walKeepRecord)
	}
}

// TestJournalGrowsInSteps: a fresh journal grows walGrow bytes at a time,
// so most commits' records overwrite blocks the file already has and
// their sync writes no new size; and a copy taken with the journal grown
// past its last record (the zeros after it) recovers every tag.
func TestJournalGrowsInSteps(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	defer s.Close()
	m := testManifest("one")
	sizes := map[int64]bool{}
	var tags []string
	for i := range 300 {
		tag := fmt.Sprintf("v%03d", i)
		putManifest(t, s, "app", m, tag)
		tags = append(tags, tag)
		fi, err := os.Stat(filepath.Join(root, walFile))
		if err != nil {
			t.Fatal(err)
		}
		sizes[fi.Size()] = true
	}
	s.commit.walMu.Lock()
	end := s.commit.wal.end
	s.commit.walMu.Unlock()
	if want := end/walGrow + 1; int64(len(sizes)) > want {
		t.Errorf("the journal took %d sizes over 300 commits (%d bytes of records), want at most %d", len(sizes), end, want)
	}
	crashed := openAt(t, copyFiles(t, root, t.TempDir()))
	defer crashed.Close()
	got, _, err := crashed.Tags(t.Context(), "app", "", len(tags)+1)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(tags) {
		t.Errorf("after the crash, %d tags (%v); want the %d answered", len(got), err, len(tags))
	}
}
