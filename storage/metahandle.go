package storage

import (
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// metaHandle is the open metadata file. Compaction (compact.go) replaces
// it with a new one while reads go on: a reader holds a reference to the
// handle it reads from, and the old file is closed once its last reader
// is done. Taking a reference never waits, so a read inside a read, or a
// read that waits for a commit, cannot deadlock with a replacement.
type metaHandle struct {
	db      *bolt.DB
	refs    atomic.Int64
	retired atomic.Bool
	once    sync.Once
	drained chan struct{} // closed once retired with no reference left
}

func newMetaHandle(db *bolt.DB) *metaHandle {
	return &metaHandle{db: db, drained: make(chan struct{})}
}

// acquire returns the current handle with a reference taken.
func (s *Store) acquire() *metaHandle {
	for {
		h := s.meta.Load()
		h.refs.Add(1)
		if s.meta.Load() == h {
			return h
		}
		h.release() // replaced meanwhile: use the new one
	}
}

func (h *metaHandle) release() {
	if h.refs.Add(-1) == 0 && h.retired.Load() {
		h.once.Do(func() { close(h.drained) })
	}
}

// retire waits until no reader holds h, which is no longer current.
func (h *metaHandle) retire() {
	h.retired.Store(true)
	if h.refs.Load() == 0 {
		h.once.Do(func() { close(h.drained) })
	}
	<-h.drained
}

// view runs fn in a read transaction of the current metadata file.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	h := s.acquire()
	defer h.release()
	return h.db.View(fn)
}

// metaDB returns the current metadata file, for tests and for callers
// that hold no transaction across a compaction.
func (s *Store) metaDB() *bolt.DB { return s.meta.Load().db }
