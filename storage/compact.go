package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Compaction rewrites metadata.db in key order into a new file and puts
// that file in its place, while the registry keeps serving. bbolt splits
// a full page in halves and never merges pages that are more than a
// quarter full, so a file grown by pushes, whose keys (digests) land
// anywhere, settles with its pages about 70% full, and deletions leave
// free pages behind that it never gives back to the disk. A compacted
// file holds the same records in pages filled to the brim.
//
// The records are copied in chunks, each from a short read transaction,
// with writes going on. Then, with writers held, both files are walked in
// key order and the new one is made to hold exactly what the old one
// holds (what changed during the copy, and what the chunks saw of it in
// different states), before the new file is synced, the journal emptied,
// and the file renamed over metadata.db. Reads in flight finish on the
// old file (metahandle.go).
//
// A crash leaves either the old file with its journal, or the new file,
// synced, with an empty journal: the journal is emptied, with every
// commit durable in the old file, before the rename. A new file left
// behind by a crash before the rename is removed at the next Open.
// compactBatch bounds the records of one chunk of the copy; a variable
// for tests.
var compactBatch = 20000

const (
	compactSuffix = ".compact"
	// compactFill is how full the copy fills its pages. A full page
	// splits in halves at the first key put into it, and keys (digests)
	// land anywhere: compacted to the brim, a file that grew by 1% more
	// records would take half as many pages more. A tenth left free takes
	// the next tenth of growth without a split.
	compactFill = 0.9
)

// compactStage, in tests, runs after the copy ("copied") and after the
// syncs that follow it ("synced"), before writers are held.
var compactStage func(stage string)

// CompactResult describes one compaction.
type CompactResult struct {
	// Before and After are the bytes metadata.db's pages take, before and
	// after (without the free space reserved past them, reserve.go).
	Before, After int64
	Took          time.Duration // the whole compaction
	Held          time.Duration // how long writes waited for it
}

// newReserve allocates the reserve of ndb, at tmp until it is renamed to
// path, and returns it, for path.
func newReserve(ndb *bolt.DB, tmp, path string) (*metaReserve, error) {
	var data int64
	ndb.View(func(tx *bolt.Tx) error {
		data = tx.Size()
		return nil
	})
	r := &metaReserve{path: path}
	if err := r.fill(tmp, data); err != nil {
		return nil, full(err)
	}
	return r, nil
}

// errStoreClosed means the store was closed.
var errStoreClosed = errors.New("storage: the store is closed")

// Compact rewrites the metadata file in key order (see above). It runs
// one at a time and returns ctx's error if ctx ends first, with nothing
// changed.
func (s *Store) Compact(ctx context.Context) (CompactResult, error) {
	s.compacting.Lock()
	defer s.compacting.Unlock()
	if s.closed {
		return CompactResult{}, errStoreClosed
	}
	start := time.Now()
	path := filepath.Join(s.root, metaFile)
	tmp := path + compactSuffix
	os.Remove(tmp)
	opts := metaOptions()
	opts.NoSync = true // synced once, before it takes the old file's place
	ndb, err := bolt.Open(tmp, 0o600, opts)
	if err != nil {
		return CompactResult{}, err
	}
	// As the conversion does: a compaction run by `sudo registry compact`
	// leaves a file the server's user can still open.
	if fi, err := os.Stat(path); err == nil {
		ownLike(fi, tmp)
	}
	old := s.acquire()
	res, swapped, err := s.compactInto(ctx, old, ndb, path, tmp)
	old.release()
	if !swapped {
		ndb.Close()
		os.Remove(tmp)
		return res, err
	}
	s.compactions.Add(1)
	// Readers still on the old file finish there.
	old.retire()
	old.db.Close()
	res.Took = time.Since(start)
	return res, err
}

// compactInto copies old into ndb, then makes ndb the metadata file at
// path (it is at tmp until then). swapped reports whether it did; an error
// with swapped true says only that the new file's journal or directory
// sync failed, and the new file is in use.
//
// No read transaction of the old file is held while waiting for writers,
// nor for long: a commit that grows the file remaps it, which waits for
// every read transaction, and holds writers meanwhile, and new read
// transactions wait behind it.
func (s *Store) compactInto(ctx context.Context, old *metaHandle, ndb *bolt.DB, path, tmp string) (res CompactResult, swapped bool, err error) {
	old.db.View(func(tx *bolt.Tx) error {
		res.Before = tx.Size()
		return nil
	})
	if err := copyChunks(ctx, old.db, ndb, s.releaseMappedIn); err != nil {
		return res, false, err
	}
	if compactStage != nil {
		compactStage("copied")
	}
	// The new file has its reserve (reserve.go) before it replaces the
	// old one's: on a disk that fills meanwhile, GC's deletions must
	// still find room. Without room for it, the old file stays.
	reserve, err := newReserve(ndb, tmp, path)
	if err != nil {
		return res, false, err
	}
	// Most of both files' bytes reach the disk before writers wait:
	// their syncs under the lock then write little.
	if err := errors.Join(ndb.Sync(), old.db.Sync()); err != nil {
		return res, false, err
	}
	if compactStage != nil {
		compactStage("synced")
	}
	c := s.commit
	c.walMu.Lock()
	held := time.Now()
	swapped, err = s.swapIn(ndb, old, reserve, path, tmp)
	res.Held = time.Since(held)
	c.walMu.Unlock()
	if swapped {
		ndb.View(func(tx *bolt.Tx) error {
			res.After = tx.Size()
			return nil
		})
	}
	return res, swapped, err
}

// swapIn, with writers held, makes ndb hold what the old file holds, makes
// it durable and puts it in place of the old file.
func (s *Store) swapIn(ndb *bolt.DB, old *metaHandle, reserve *metaReserve, path, tmp string) (bool, error) {
	c := s.commit
	// No commit runs: this read transaction keeps no writer waiting.
	last, err := old.db.Begin(false)
	if err != nil {
		return false, err
	}
	err = ndb.Update(func(ntx *bolt.Tx) error { return syncTx(ntx, last) })
	last.Rollback()
	if err != nil {
		return false, err
	}
	if err := ndb.Sync(); err != nil {
		return false, err
	}
	// From here to the rename no commit is made: the old file holds
	// every one, durably, and the journal none.
	if c.wal != nil {
		if err := c.wal.drain(); err != nil {
			return false, err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, err
	}
	// A failure here cannot be undone (the old file is gone from the
	// directory): it is reported, with the new file in use.
	derr := syncDir(s.root)
	var werr error
	if c.wal != nil {
		f := c.wal.f
		c.wal, werr = openJournal(ndb, f, path)
		if c.wal == nil {
			// Safe without the journal: bbolt syncs each commit.
			ndb.NoSync = false
			f.Close()
		}
	} else {
		ndb.NoSync = false
	}
	c.db = ndb
	c.reserve = reserve
	s.meta.Store(newMetaHandle(ndb))
	return true, errors.Join(derr, werr)
}
