package storage

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The metadata reserve keeps the metadata file allocated past the end of
// its data, with zeros bbolt never reads (it reads no page past its high
// water mark, and rebuilds its free list from the pages it reaches). When
// the disk fills, metadata writes then land in space already allocated,
// so GC can still commit the deletions that free the disk: without it,
// its transaction needs new pages and fails with ENOSPC, and nothing can
// ever be freed. Blob bytes cannot use the reserve, since it lies inside
// the metadata file. On copy-on-write filesystems (btrfs, ZFS) rewriting
// allocated blocks still takes new ones, and the reserve helps less.
const (
	minReserve = 8 << 20
	maxReserve = 256 << 20
	// reserveRetry spaces out refills that failed, the disk being full.
	reserveRetry = time.Second
)

// reserveSize is the reserve kept past data bytes of metadata: a GC
// transaction rewrites a share of the file's pages, larger as it grows.
func reserveSize(data int64) int64 {
	return min(max(data/16, minReserve), maxReserve)
}

// metaReserve tops up the reserve of one metadata file.
type metaReserve struct {
	path  string
	end   atomic.Int64 // bytes of the file known allocated
	retry atomic.Int64 // UnixNano before which no refill is tried
}

// ensure refills the reserve when less than half of it is left. It runs
// inside a write transaction, so bbolt neither grows the file nor writes
// past its data meanwhile: no committed page lies at or past tx.Size(),
// and this transaction writes its pages only when it commits. Failing to
// refill is not an error: the disk is full, and writes go on as they
// would without a reserve.
func (r *metaReserve) ensure(tx *bolt.Tx) {
	data := tx.Size()
	size := reserveSize(data)
	if data+size/2 <= r.end.Load() || time.Now().UnixNano() < r.retry.Load() {
		return
	}
	if err := r.fill(r.path, data); err != nil {
		r.end.Store(0)
		r.retry.Store(time.Now().Add(reserveRetry).UnixNano())
	}
}

// fill allocates the reserve past data bytes of the metadata file at
// file (r.path, or a compaction's new file before its rename).
func (r *metaReserve) fill(file string, data int64) error {
	end := data + reserveSize(data)
	if err := allocateRange(file, data, end); err != nil {
		return err
	}
	r.end.Store(end)
	return nil
}

// spaceFreed lets the next write transaction refill the reserve at once.
func (r *metaReserve) spaceFreed() { r.retry.Store(0) }

// allocateRange makes the filesystem allocate bytes [from, to) of the file
// at path, extending it if needed. The range may lie below the file's end
// yet be a hole: bbolt grows the file with truncate, which allocates
// nothing.
func allocateRange(path string, from, to int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if ok, err := allocate(f, from, to-from); ok {
		return err
	}
	// No fallocate: zeros, which bbolt never reads past its data.
	zeros := make([]byte, min(to-from, 1<<20))
	for off := from; off < to; {
		n, err := f.WriteAt(zeros[:min(int64(len(zeros)), to-off)], off)
		off += int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// full marks err as ErrStorageFull when it says the disk or the quota is
// full. bbolt reports a failed grow with the error's text only.
func full(err error) error {
	if err == nil || errors.Is(err, ErrStorageFull) {
		return err
	}
	msg := err.Error()
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error()) {
		return fmt.Errorf("%w: %w", ErrStorageFull, err)
	}
	return err
}
