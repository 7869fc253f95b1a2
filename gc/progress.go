package gc

import (
	"fmt"
	"sync/atomic"
)

// Progress counts a pass's work while it runs, for a progress line: Line
// may be called while the pass runs. A pass given none counts nothing.
type Progress struct {
	deleting             atomic.Bool
	repos, blobs         atomic.Int64 // scanned while planning
	planned, done, freed atomic.Int64 // while deleting
}

func (p *Progress) scannedRepo() {
	if p != nil {
		p.repos.Add(1)
	}
}

func (p *Progress) scannedBlob() {
	if p != nil {
		p.blobs.Add(1)
	}
}

func (p *Progress) startDeleting(items int) {
	if p != nil {
		p.planned.Store(int64(items))
		p.deleting.Store(true)
	}
}

func (p *Progress) deleted(it Item) {
	if p != nil {
		p.done.Add(1)
		if it.Kind != KindManifest && it.Kind != KindLink {
			p.freed.Add(it.Size)
		}
	}
}

// Line describes where the pass is: planning, with what it scanned, or
// deleting, with the items done and the bytes freed (in bytes when raw).
func (p *Progress) Line(raw bool) string {
	if !p.deleting.Load() {
		return fmt.Sprintf("gc: planning: %d repositories, %d blobs scanned", p.repos.Load(), p.blobs.Load())
	}
	done, planned := p.done.Load(), p.planned.Load()
	pct := 100
	if planned > 0 {
		pct = int(done * 100 / planned)
	}
	return fmt.Sprintf("gc: deleting: %d of %d items (%d%%), %s freed", done, planned, pct, sizeWord(p.freed.Load(), raw))
}
