package gc

import (
	"context"
	"sync"
	"time"
)

// pacer spreads a pass over time so that the requests served meanwhile
// keep their latency: after each slice of work it pauses long enough that
// working takes only share of the wall time.
type pacer struct {
	share float64
	mu    sync.Mutex
	since time.Time // start of the current slice of work
}

// pauseAfter is the least work between pauses. Short slices keep a
// request that arrives during one from waiting long; shorter ones would
// cost more in wake-ups than they give back.
const pauseAfter = time.Millisecond

// newPacer returns a pacer for share in (0, 1), or nil (never pauses).
func newPacer(share float64) *pacer {
	if share <= 0 || share >= 1 {
		return nil
	}
	return &pacer{share: share, since: time.Now()}
}

// yield pauses if the current slice of work is long enough. It is safe
// for concurrent use: workers share one slice and pause together.
func (p *pacer) yield(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	p.mu.Lock()
	now := time.Now()
	if wait := p.since.Sub(now); wait > 0 {
		// Another worker is pausing: pause with it.
		p.mu.Unlock()
		return sleep(ctx, wait)
	}
	worked := now.Sub(p.since)
	if worked < pauseAfter {
		p.mu.Unlock()
		return ctx.Err()
	}
	pause := time.Duration(float64(worked) * (1 - p.share) / p.share)
	p.since = now.Add(pause)
	p.mu.Unlock()
	return sleep(ctx, pause)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
