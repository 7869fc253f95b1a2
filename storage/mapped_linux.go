package storage

import (
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMapped drops this process's mapping of the metadata file's pages
// with madvise(MADV_DONTNEED) on bbolt's read-only shared map. The pages
// stay in the page cache and fault back in on their next read; what goes
// is their share of the process's RSS, which a GC scan reading the whole
// file would otherwise grow by the file's size, and the kernel can then
// reclaim them before anyone's mapped pages. The read transaction keeps
// the map where it is meanwhile (bbolt remaps only with no transaction
// open). It runs at most every 5 ms.
func (s *Store) releaseMapped() {
	now := time.Now().UnixNano()
	if last := s.mapReleased.Load(); now-last < int64(5*time.Millisecond) || !s.mapReleased.CompareAndSwap(last, now) {
		return
	}
	s.db.View(func(tx *bolt.Tx) error {
		unix.Syscall(unix.SYS_MADVISE, s.db.Info().Data, uintptr(tx.Size()), unix.MADV_DONTNEED)
		return nil
	})
}
