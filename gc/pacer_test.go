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
	var wg sync.WaitGroup
	var other time.Duration
	wg.Go(func() {
		time.Sleep(5 * time.Millisecond) // inside the first worker's pause
		s := time.Now()
		p.yield(context.Background())
		other = time.Since(s)
	})
	p.yield(context.Background())
	if took := time.Since(start); took < 60*time.Millisecond {
		t.Errorf("yield after 20ms of work at share 0.25 paused %v, want at least 60ms", took)
	}
	wg.Wait()
	if other < 50*time.Millisecond {
		t.Errorf("a second worker yielding 5ms into the pause waited %v, want the rest of it (≥ 50ms)", other)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	time.Sleep(10 * time.Millisecond)
	if err := p.yield(ctx); err == nil {
		t.Errorf("yield with a cancelled context = nil, want its error")
	}
}
