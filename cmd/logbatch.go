package cmd

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Log lines written while requests are being served are gathered and
// written together, at most logBatchDelay after the first of them or once
// logBatchSize bytes gather: one write per access line cost a system call
// per request, a tenth of the server's time on manifest pulls. Writing
// when the last running request finishes would not do: on a few cores
// requests seldom overlap, so that is after nearly every one. Lines
// written while no request runs (start-up, shutdown, scheduled passes
// when idle) go out at once, with any gathered before them.
const (
	logBatchDelay = 100 * time.Millisecond
	logBatchSize  = 64 << 10 // bytes gathered before they are written at once
)

// logBatch is the server's log output.
type logBatch struct {
	out    io.Writer
	active atomic.Int64 // requests running

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer // writes buf logBatchDelay after its first line
}

func newLogBatch(out io.Writer) *logBatch {
	b := &logBatch{out: out}
	b.timer = time.AfterFunc(time.Hour, func() { b.Flush() })
	b.timer.Stop()
	return b
}

// Write gathers p, or writes it with what is gathered when no request
// runs. zerolog reuses p once Write returns, so it is copied.
func (b *logBatch) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if b.active.Load() == 0 || len(b.buf) >= logBatchSize {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	} else if len(b.buf) == len(p) {
		b.timer.Reset(logBatchDelay)
	}
	return len(p), nil
}

// Flush writes what is gathered.
func (b *logBatch) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *logBatch) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.out.Write(b.buf)
	if cap(b.buf) > 4*logBatchSize {
		b.buf = nil // a burst of long lines: give the memory back
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

// wrap counts the requests next serves.
func (b *logBatch) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.active.Add(1)
		defer b.active.Add(-1)
		next.ServeHTTP(w, r)
	})
}
