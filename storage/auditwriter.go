package storage

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// auditFlushEvery and auditBatch bound how long and how many entries an
// AuditWriter holds before writing them in one transaction. The batch is
// large on purpose: each write is a commit, and commits are what a
// manifest PUT waits for; at 512 a busy registry's PUTs slowed by a sixth.
// auditQueue, the most queued, leaves a batch of room past the one that
// wakes the writer, for the entries that arrive while it finishes writing
// the last batch and takes this one: with no room, 32 clients pushing
// tags (some 15,000 a second) had entries dropped on a disk that kept up.
const (
	auditFlushEvery = time.Second
	auditBatch      = 8192
	auditQueue      = 2 * auditBatch
)

// AuditWriter records audit entries off the request path: Record queues
// an entry without waiting, and one goroutine appends what is queued to
// the store every second (or every auditBatch entries) in one
// transaction. A crash loses at most the last second of entries, and a
// queue full because the disk is slow drops entries (counted by Dropped,
// and told to onErr) rather than slow requests: the record is a feed for people, not the
// replication log.
//
// The queue is a slice that grows with what is queued, not a buffer of
// auditQueue entries made up front: such a buffer (1.3 MB of pointers)
// was half the live heap of a server at rest, and every garbage
// collection scanned all of it, entries or none.
type AuditWriter struct {
	store   *Store
	onErr   func(error)
	mu      sync.Mutex
	queue   []AuditEntry  // under mu: entries the goroutine has not taken
	limit   int           // of queue: more are dropped
	full    chan struct{} // the queue reached auditBatch
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64
}

// NewAuditWriter starts a writer to s; onErr, if not nil, is told of
// failed writes. Close stops it.
func NewAuditWriter(s *Store, onErr func(error)) *AuditWriter {
	w := newAuditWriter(s, onErr, auditQueue)
	go w.run()
	return w
}

// newAuditWriter returns a writer that queues at most limit entries, with
// its goroutine not started.
func newAuditWriter(s *Store, onErr func(error), limit int) *AuditWriter {
	return &AuditWriter{store: s, onErr: onErr, limit: limit, full: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Record queues e, stamped with the current time if it has none. It
// never blocks. A nil writer records nothing.
func (w *AuditWriter) Record(e AuditEntry) {
	if w == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	w.mu.Lock()
	n := len(w.queue)
	if n < w.limit {
		w.queue = append(w.queue, e)
	}
	w.mu.Unlock()
	switch {
	case n >= w.limit:
		w.dropped.Add(1)
	case n+1 == auditBatch:
		select {
		case w.full <- struct{}{}:
		default:
		}
	}
}

// take returns the entries queued and leaves spare, emptied, as the
// queue; with none queued, it leaves no queue, so that an idle writer
// holds nothing a burst grew.
func (w *AuditWriter) take(spare []AuditEntry) []AuditEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	if len(q) == 0 {
		w.queue = nil
		return nil
	}
	w.queue = spare[:0]
	return q
}

// Dropped is how many entries were dropped because the queue was full.
func (w *AuditWriter) Dropped() uint64 { return w.dropped.Load() }

// Close writes what is queued and stops the writer.
func (w *AuditWriter) Close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

func (w *AuditWriter) run() {
	defer close(w.done)
	t := time.NewTicker(auditFlushEvery)
	defer t.Stop()
	var spare []AuditEntry // the last batch written, reused as the next queue
	var reported uint64    // drops already told to onErr
	flush := func() {
		if d := w.dropped.Load(); d > reported && w.onErr != nil {
			w.onErr(fmt.Errorf("storage: audit record: queue full, dropped %d", d-reported))
			reported = d
		}
		batch := w.take(spare)
		if len(batch) == 0 {
			spare = nil // a second without entries: see take
			return
		}
		if err := w.store.AppendAudit(context.Background(), batch); err != nil && w.onErr != nil {
			w.onErr(err)
		}
		clear(batch) // the entries' strings, until the slice is reused
		spare = batch[:0]
	}
	for {
		select {
		case <-w.full:
			flush()
		case <-t.C:
			flush()
		case <-w.stop:
			flush()
			return
		}
	}
}
