package retention

import (
	"fmt"
	"sync/atomic"
)

// Progress counts a retention pass's work while it runs, for a progress
// line: Line may be called while the pass runs. A pass given none counts
// nothing.
type Progress struct {
	deleting          atomic.Bool
	repos             atomic.Int64 // read by Collect
	planned, attempts atomic.Int64 // deletions, by Apply
}

func (p *Progress) scannedRepo() {
	if p != nil {
		p.repos.Add(1)
	}
}

func (p *Progress) startDeleting(n int) {
	if p != nil {
		p.planned.Store(int64(n))
		p.deleting.Store(true)
	}
}

func (p *Progress) tried(n int) {
	if p != nil {
		p.attempts.Add(int64(n))
	}
}

// Line describes where the pass is: reading repositories, or deleting.
func (p *Progress) Line() string {
	if !p.deleting.Load() {
		return fmt.Sprintf("retention: planning: %d repositories read", p.repos.Load())
	}
	return fmt.Sprintf("retention: deleting: %d of %d", p.attempts.Load(), p.planned.Load())
}
