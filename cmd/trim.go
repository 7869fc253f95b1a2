package cmd

import (
	"context"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// idleTrimAfter is how long the server must be quiet before it hands freed
// memory back to the operating system. Go's background scavenger does this
// too, but slowly; on a small box the memory a burst of uploads used should
// not stay resident for minutes after it.
const idleTrimAfter = 2 * time.Second

// idleTrimmer counts requests and, once none has run for after since the
// last activity, returns freed heap to the OS once, after calling
// release, if set, to let go of what is kept only to be faster, and
// unmaps the executable's pages (releaseExecutable) last, so that the
// collections' own run of the runtime's code faults nothing back in.
type idleTrimmer struct {
	after   time.Duration
	release func()
	active  atomic.Int64 // requests in flight
	last    atomic.Int64 // UnixNano of the last request's end
	dirty   atomic.Bool  // requests ran since the last trim
}

func (t *idleTrimmer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.active.Add(1)
		defer func() {
			t.last.Store(time.Now().UnixNano())
			t.dirty.Store(true)
			t.active.Add(-1)
		}()
		next.ServeHTTP(w, r)
	})
}

func (t *idleTrimmer) run(ctx context.Context) {
	tick := time.NewTicker(t.after / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if t.active.Load() == 0 && t.dirty.Load() && now.Sub(time.Unix(0, t.last.Load())) >= t.after {
				t.dirty.Store(false)
				if t.release != nil {
					t.release()
				}
				// The first collection moves pooled upload buffers to
				// sync.Pool's victim cache; the second frees them.
				runtime.GC()
				debug.FreeOSMemory()
				releaseExecutable()
			}
		}
	}
}
