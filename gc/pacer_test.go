package gc

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestPacer checks the pauses' lower bounds, which timers guarantee: after
// a slice of work, yield pauses at least as long as the slice took times
// (1-share)/share, and a worker that yields during another's pause waits
// for its end.
func TestPacer(t *testing.T) {
	if newPacer(0) != nil || newPacer(1) != nil {
		t.Errorf("newPacer(0 or 1) is not nil: such passes must never pause")
	}
	var never *pacer
	if err := never.yield(context.Background()); err != nil {
		t.Errorf("nil pacer yield = %v", err)
	}

	p := newPacer(0.25) // pause three times the work
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	// The pause lasts at least three times the 20ms of work, so it ends
	// no earlier than minEnd. Only such lower bounds are checked: a busy
	// machine makes sleeps longer, never shorter.
	minEnd := start.Add(60 * time.Millisecond)
	var wg sync.WaitGroup
	var otherStart, otherEnd time.Time
	wg.Go(func() {
		time.Sleep(5 * time.Millisecond) // inside the first worker's pause, unless the machine is slow
		otherStart = time.Now()
		p.yield(context.Background())
		otherEnd = time.Now()
	})
	p.yield(context.Background())
	if time.Now().Before(minEnd) {
		t.Errorf("yield after 20ms of work at share 0.25 paused %v, want at least 60ms", time.Since(start))
	}
	wg.Wait()
	switch {
	case !otherStart.Before(minEnd):
		t.Logf("the second worker yielded %v after the pause began, too late to test sharing it", otherStart.Sub(start))
	case otherEnd.Before(minEnd):
		t.Errorf("a second worker yielding %v into the pause returned %v after it began, before the pause's end (≥ 60ms)", otherStart.Sub(start), otherEnd.Sub(start))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	time.Sleep(10 * time.Millisecond)
	if err := p.yield(ctx); err == nil {
		t.Errorf("yield with a cancelled context = nil, want its error")
	}
}
