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
// open). It runs at most every millisecond.
func (s *Store) releaseMapped() {
	if s.releaseDue() {
		s.releaseMappedNow()
	}
}

// releaseMappedNow is releaseMapped without the limit on how often.
func (s *Store) releaseMappedNow() {
	s.view(func(tx *bolt.Tx) error {
		madviseDontNeed(tx)
		return nil
	})
}

// releaseMappedIn is releaseMapped for a walk inside tx, read or write,
// called as it goes: the kernel maps 64 KiB of the page cache around
// every page a read faults in (fault-around), so a walk over pages spread
// through the file maps sixteen times what it reads unless released. The
// open transaction keeps the map in place: bbolt remaps only in a write
// transaction's commit, with no read transaction open.
func (s *Store) releaseMappedIn(tx *bolt.Tx) {
	if s.releaseDue() {
		madviseDontNeed(tx)
	}
}

// releaseDue reports whether a release is due, at most one per
// millisecond across all callers: each costs the walks that follow a
// fault per page they touch again.
func (s *Store) releaseDue() bool {
	now := time.Now().UnixNano()
	last := s.mapReleased.Load()
	return now-last >= int64(time.Millisecond) && s.mapReleased.CompareAndSwap(last, now)
}

func madviseDontNeed(tx *bolt.Tx) {
	unix.Syscall(unix.SYS_MADVISE, tx.DB().Info().Data, uintptr(tx.Size()), unix.MADV_DONTNEED)
}
