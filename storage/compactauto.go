package storage

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// When the server compacts the metadata file on its own (KeepCompact):
// when compaction would take at least compactWaste of its pages' bytes
// away, and the file is at least minCompact. A file grown by pushes alone
// settles with its pages about 70% full, a fifth more than compacted.
// Whether it would is estimated from the bytes the records use, which
// takes a walk over every page: it is made after each GC pass
// (WakeCompactor), and otherwise only once the file has grown by an
// eighth since the last estimate.
const (
	compactWaste      = 0.2
	compactCheckEvery = time.Minute
	// compactRoom is the free space, in new files, the server wants
	// before it compacts on its own.
	compactRoom = 4
)

// minCompact is a variable for tests.
var minCompact int64 = 4 << 20

// WakeCompactor asks KeepCompact to look at the metadata file now:
// garbage collection calls it after each pass, which may have freed many
// pages. Without a KeepCompact running it does nothing.
func (s *Store) WakeCompactor() {
	select {
	case s.compactWake <- struct{}{}:
	default:
	}
}

// KeepCompact runs until ctx is done, compacting the metadata file when it
// is worth it (see above). report gets the result of each compaction.
func (s *Store) KeepCompact(ctx context.Context, report func(CompactResult, error)) {
	t := time.NewTicker(compactCheckEvery)
	defer t.Stop()
	var checked int64 // the file's data at the last estimate
	for {
		woken := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.compactWake:
			woken = true
		}
		data, compacted := s.compactEstimate(woken || checked == 0, checked+checked/8)
		if compacted == 0 {
			continue
		}
		checked = data
		if float64(compacted) > float64(data)*(1-compactWaste) {
			continue
		}
		// The new file must not take the space pushes need.
		if free, ok := freeSpace(s.root); ok && free < compactRoom*compacted {
			report(CompactResult{}, fmt.Errorf("not compacting the metadata file: %d bytes free in %s, want %d", free, s.root, compactRoom*compacted))
			continue
		}
		res, err := s.Compact(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			checked = res.After
		}
		s.releaseMapped()
		report(res, err)
	}
}

// compactEstimate returns the bytes of the metadata file's pages and an
// estimate of what they would be compacted, or 0 for the estimate if the
// file is under minCompact, or, unless always, under grown.
func (s *Store) compactEstimate(always bool, grown int64) (data, compacted int64) {
	var names [][]byte
	s.view(func(tx *bolt.Tx) error {
		data = tx.Size()
		if data < minCompact || (!always && data < grown) {
			return nil
		}
		// The meta pages, the free list and the root are not in buckets.
		compacted = 4 * int64(tx.DB().Info().PageSize)
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, bytes.Clone(name))
			return nil
		})
	})
	// A read transaction per bucket: none is held long (see compactInto).
	for _, name := range names {
		s.view(func(tx *bolt.Tx) error {
			if b := tx.Bucket(name); b != nil {
				st := b.Stats()
				compacted += int64(st.BranchInuse + st.LeafInuse)
			}
			s.releaseMappedIn(tx)
			return nil
		})
	}
	return data, int64(float64(compacted) / compactFill)
}
