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
	// logQueueMax bounds the batches waiting behind the one being written.
	// Once that many wait, lines wait for room, in the order they came,
	// as they waited for every write before: a log that is slow for a
	// moment holds up only the requests that filled a batch, one that
	// stays slower than lines come paces every request, and memory stays
	// bounded either way.
	logQueueMax = 2
)

// logBatch is the server's log output. A batch is written by the request
// (or the timer) that filled it, outside the lock lines are gathered
// under: while it is written, to a slow disk (an SD card the kernel is
// throttling, a pipe whose reader lags), other requests go on gathering
// their lines.
type logBatch struct {
	out    io.Writer
	active atomic.Int64 // requests running

	mu    sync.Mutex // gathering
	buf   []byte
	timer *time.Timer // writes buf logBatchDelay after its first line

	qmu     sync.Mutex // the batches taken, in order, for whoever writes next
	queued  [][]byte
	taken   sync.Cond // on qmu: a batch was taken from queued to be written
	spare   []byte    // a written batch's buffer, for the next one
	queuedN uint64    // batches ever queued
	doneN   uint64    // batches ever taken from queued and written

	writing sync.Mutex // held while queued batches are written, one writer at a time
}

func newLogBatch(out io.Writer) *logBatch {
	b := &logBatch{out: out}
	b.taken.L = &b.qmu
	b.timer = time.AfterFunc(time.Hour, func() { b.Flush() })
	b.timer.Stop()
	return b
}

// Write gathers p, or writes it with what is gathered when no request
// runs or a batch is full, and then returns once that is written. zerolog
// reuses p once Write returns, so it is copied.
func (b *logBatch) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf = append(b.buf, p...)
	if b.active.Load() > 0 && len(b.buf) < logBatchSize {
		if len(b.buf) == len(p) {
			b.timer.Reset(logBatchDelay)
		}
		b.mu.Unlock()
		return len(p), nil
	}
	n := b.takeLocked()
	b.mu.Unlock()
	if err := b.writeQueued(n); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is gathered, and returns once it is written.
func (b *logBatch) Flush() error {
	b.mu.Lock()
	n := b.takeLocked()
	b.mu.Unlock()
	return b.writeQueued(n)
}

// takeLocked queues what is gathered as a batch, once there is room:
// until then b.mu stays held, and lines wait. It returns how many
// batches have been queued, the caller's last. b.mu is held.
func (b *logBatch) takeLocked() uint64 {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	if len(b.buf) == 0 {
		return b.queuedN
	}
	for len(b.queued) >= logQueueMax {
		b.taken.Wait()
	}
	b.queued = append(b.queued, b.buf)
	b.buf, b.spare = b.spare, nil
	b.queuedN++
	return b.queuedN
}

// writeQueued writes queued batches, in order, until the first n are
// written, those other callers queued included, and returns then: a log
// that never catches up holds each caller for the batches before its own,
// not for as long as others keep queueing.
func (b *logBatch) writeQueued(n uint64) error {
	b.writing.Lock()
	defer b.writing.Unlock()
	var err error
	for {
		b.qmu.Lock()
		if b.doneN >= n || len(b.queued) == 0 {
			if len(b.queued) == 0 {
				b.queued = nil
			}
			b.qmu.Unlock()
			return err
		}
		batch := b.queued[0]
		b.queued[0] = nil
		b.queued = b.queued[1:]
		b.taken.Signal() // one batch's room, for the one caller that can wait (it holds b.mu)
		b.qmu.Unlock()
		if _, werr := b.out.Write(batch); werr != nil {
			err = werr
		}
		b.qmu.Lock()
		b.doneN++
		if b.spare == nil && cap(batch) <= 4*logBatchSize { // not a burst of long lines: keep it
			b.spare = batch[:0]
		}
		b.qmu.Unlock()
	}
}

// wrap counts the requests next serves.
func (b *logBatch) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.active.Add(1)
		defer b.active.Add(-1)
		next.ServeHTTP(w, r)
	})
}
