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
const (
	auditFlushEvery = time.Second
	auditBatch      = 8192
	auditQueue      = 8192
)

// AuditWriter records audit entries off the request path: Record queues
// an entry without waiting, and one goroutine appends what is queued to
// the store every second (or every auditBatch entries) in one
// transaction. A crash loses at most the last second of entries, and a
// queue full because the disk is slow drops entries (counted by Dropped,
// and told to onErr) rather than slow requests: the record is a feed for people, not the
// replication log.
type AuditWriter struct {
	store   *Store
	onErr   func(error)
	queue   chan AuditEntry
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64
}

// NewAuditWriter starts a writer to s; onErr, if not nil, is told of
// failed writes. Close stops it.
func NewAuditWriter(s *Store, onErr func(error)) *AuditWriter {
	w := &AuditWriter{store: s, onErr: onErr, queue: make(chan AuditEntry, auditQueue), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
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
	select {
	case w.queue <- e:
	default:
		w.dropped.Add(1)
	}
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
	var batch []AuditEntry
	var reported uint64 // drops already told to onErr
	flush := func() {
		if d := w.dropped.Load(); d > reported && w.onErr != nil {
			w.onErr(fmt.Errorf("storage: audit record: queue full, dropped %d", d-reported))
			reported = d
		}
		if len(batch) == 0 {
			// A second without entries: let go of the batch a burst grew,
			// which an idle server would otherwise hold.
			batch = nil
			return
		}
		if err := w.store.AppendAudit(context.Background(), batch); err != nil && w.onErr != nil {
			w.onErr(err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case e := <-w.queue:
			if batch = append(batch, e); len(batch) >= auditBatch {
				flush()
			}
		case <-t.C:
			flush()
		case <-w.stop:
			for {
				select {
				case e := <-w.queue:
					batch = append(batch, e)
				default:
					flush()
					return
				}
			}
		}
	}
}
