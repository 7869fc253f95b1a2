package storage

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestAuditBoundedAndPaged(t *testing.T) {
	s := openAt(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	var es []AuditEntry
	for i := range 25 {
		es = append(es, AuditEntry{Kind: AuditPush, Repository: fmt.Sprintf("r%d", i%2), Reference: fmt.Sprint(i)})
	}
	if err := s.appendAudit(es[:15], 20); err != nil {
		t.Fatal(err)
	}
	if err := s.appendAudit(es[15:], 20); err != nil {
		t.Fatal(err)
	}
	// Kept: the last 20 (references 5..24). Pages of 7, newest first.
	var got []string
	var before uint64
	for pages := 0; ; pages++ {
		p, err := s.ListAudit(ctx, AuditQuery{Before: before, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			got = append(got, e.Reference)
		}
		if p.Next == 0 {
			break
		}
		before = p.Next
		if pages > 5 {
			t.Fatal("ListAudit does not end")
		}
	}
	if len(got) != 20 || got[0] != "24" || got[19] != "5" {
		t.Fatalf("ListAudit pages = %v, want 24 down to 5", got)
	}
	p, err := s.ListAudit(ctx, AuditQuery{Limit: 100, Match: func(e *AuditEntry) bool { return e.Repository == "r1" }})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 10 || p.Entries[0].Reference != "23" || p.Next != 0 {
		t.Fatalf("ListAudit(r1) = %d entries from %q, next %d; want 10 from 23, next 0", len(p.Entries), p.Entries[0].Reference, p.Next)
	}
	// Reading at most 5 entries a call (seq = reference+1): the matches
	// among them, and a Next that goes on below what was read.
	odd := func(e *AuditEntry) bool { return e.Repository == "r1" }
	p, err = s.ListAudit(ctx, AuditQuery{Limit: 100, Match: odd, MaxScan: 5})
	if err != nil || len(p.Entries) != 2 || p.Entries[1].Reference != "21" || p.Next != 21 {
		t.Fatalf("ListAudit(r1, MaxScan 5) = %+v, %v; want 23, 21 and next 21", p, err)
	}
	p, _ = s.ListAudit(ctx, AuditQuery{Before: p.Next, Limit: 100, Match: odd, MaxScan: 5})
	if len(p.Entries) != 3 || p.Entries[0].Reference != "19" || p.Entries[2].Reference != "15" || p.Next != 16 {
		t.Fatalf("ListAudit(r1, MaxScan 5, second page) = %+v; want 19, 17, 15 and next 16", p)
	}
}

func TestAuditWriterFlushesOnClose(t *testing.T) {
	s := openAt(t, t.TempDir())
	defer s.Close()
	w := NewAuditWriter(s, func(err error) { t.Error(err) })
	for range 3 {
		w.Record(AuditEntry{Kind: AuditLogin, Identity: "alice"})
	}
	w.Close()
	p, err := s.ListAudit(context.Background(), AuditQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 3 || p.Entries[0].Time.IsZero() || p.Entries[0].Seq != 3 {
		t.Fatalf("ListAudit after Close = %+v, want 3 stamped entries", p.Entries)
	}
}

// A writer holds memory for what is queued, not for what could be: a
// buffer of auditQueue entries made up front was half the live heap of a
// server at rest, scanned by every garbage collection.
func TestAuditWriterStartsSmall(t *testing.T) {
	s := openAt(t, t.TempDir())
	defer s.Close()
	// The least of three, so that another goroutine's allocations
	// meanwhile cannot fail the test.
	var w *AuditWriter
	least := uint64(1 << 62)
	for range 3 {
		if w != nil {
			w.Close()
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		w = NewAuditWriter(s, func(err error) { t.Error(err) })
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	defer w.Close()
	if least > 64<<10 {
		t.Fatalf("NewAuditWriter allocated %d bytes, want at most 64 KiB", least)
	}
	w.Record(AuditEntry{Kind: AuditPush})
	w.mu.Lock()
	n := cap(w.queue)
	w.mu.Unlock()
	if n > 16 {
		t.Fatalf("one entry queued: the queue holds room for %d", n)
	}
}

// A full batch wakes the writer before its second is up.
func TestAuditWriterBatchWakes(t *testing.T) {
	s := openAt(t, t.TempDir())
	defer s.Close()
	w := newAuditWriter(s, func(err error) { t.Error(err) }, auditQueue)
	for i := range auditBatch {
		if len(w.full) != 0 {
			t.Fatalf("woken after %d entries, want %d", i, auditBatch)
		}
		w.Record(AuditEntry{Kind: AuditPush})
	}
	if len(w.full) != 1 {
		t.Fatalf("%d entries queued and the writer not woken", auditBatch)
	}
	go w.run()
	w.Close()
	if p, _ := s.ListAudit(context.Background(), AuditQuery{Limit: 1}); len(p.Entries) != 1 || p.Entries[0].Seq != auditBatch {
		t.Fatalf("ListAudit = %+v, want the last of %d entries first", p.Entries, auditBatch)
	}
}

// Entries that arrive after a full batch woke the writer, before it
// takes the batch, are queued, not dropped: a burst of pushes on a disk
// that keeps up loses none.
func TestAuditWriterRoomPastBatch(t *testing.T) {
	s := openAt(t, t.TempDir())
	defer s.Close()
	w := newAuditWriter(s, func(err error) { t.Error(err) }, auditQueue)
	const more = 100
	for range auditBatch + more {
		w.Record(AuditEntry{Kind: AuditPush})
	}
	if w.Dropped() != 0 {
		t.Fatalf("%d entries dropped of %d recorded after a full batch, want none", w.Dropped(), more)
	}
	go w.run()
	w.Close()
	if p, _ := s.ListAudit(context.Background(), AuditQuery{Limit: 1}); len(p.Entries) != 1 || p.Entries[0].Seq != auditBatch+more {
		t.Fatalf("ListAudit = %+v, want the last of %d entries first", p.Entries, auditBatch+more)
	}
}

// take hands over what is queued and leaves the spare as the queue; with
// nothing queued it leaves no queue at all, as an idle writer should.
func TestAuditWriterTake(t *testing.T) {
	w := newAuditWriter(nil, nil, auditQueue)
	w.Record(AuditEntry{Kind: AuditPush})
	spare := make([]AuditEntry, 0, 64)
	if got := w.take(spare); len(got) != 1 || cap(w.queue) != 64 {
		t.Fatalf("take = %d entries, queue room %d; want 1 and the spare's 64", len(got), cap(w.queue))
	}
	if got := w.take(nil); got != nil || w.queue != nil {
		t.Fatalf("take with nothing queued = %v, queue room %d; want nothing held", got, cap(w.queue))
	}
}

func TestAuditWriterDropsWhenFull(t *testing.T) {
	s := openAt(t, t.TempDir())
	defer s.Close()
	var errs []error
	// A writer whose goroutine has not started: its queue of one fills.
	w := newAuditWriter(s, func(err error) { errs = append(errs, err) }, 1)
	w.Record(AuditEntry{Kind: AuditPush})
	w.Record(AuditEntry{Kind: AuditPush})
	if w.Dropped() != 1 {
		t.Fatalf("Dropped() = %d, want 1", w.Dropped())
	}
	go w.run()
	w.Close()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "queue full, dropped 1") {
		t.Fatalf("onErr got %v, want one report of 1 entry dropped", errs)
	}
	if p, _ := s.ListAudit(context.Background(), AuditQuery{Limit: 10}); len(p.Entries) != 1 {
		t.Fatalf("ListAudit = %d entries, want the 1 queued", len(p.Entries))
	}
}
