package cmd

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLogBatch: lines go out at once while no request runs; lines written
// during requests are gathered, and go out within logBatchDelay, once
// logBatchSize bytes gather, before the next line written while no
// request runs, or at Flush.
func TestLogBatch(t *testing.T) {
	out := &syncBuffer{}
	b := newLogBatch(out)
	written := func() string {
		out.mu.Lock()
		defer out.mu.Unlock()
		return out.buf.String()
	}
	waitFor := func(line string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(written(), line); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%q still not written 10s later: log = %q", line, written())
			}
		}
	}

	b.Write([]byte("idle\n"))
	if got := written(); got != "idle\n" {
		t.Fatalf("a line written while no request runs: log = %q, want it at once", got)
	}

	h := b.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.Write([]byte(r.URL.Path + "\n"))
		if got := written(); strings.Contains(got, r.URL.Path) {
			t.Errorf("line of %s written at once while its request runs: log = %q", r.URL.Path, got)
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/one", nil))
	waitFor("/one\n")

	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/two", nil))
	b.Write([]byte("idle again\n"))
	if got := written(); !strings.HasSuffix(got, "/two\nidle again\n") {
		t.Errorf("a line written while no request runs: log = %q, want it after the gathered ones", got)
	}

	b.active.Add(1) // a request that runs on
	defer b.active.Add(-1)
	long := strings.Repeat("x", logBatchSize)
	b.Write([]byte(long))
	if got := written(); !strings.HasSuffix(got, long) {
		t.Errorf("%d bytes gathered were not written at once", len(long))
	}
	b.Write([]byte("last\n"))
	b.Flush()
	if got := written(); !strings.HasSuffix(got, "last\n") {
		t.Errorf("Flush left lines unwritten: log ends %q", got[len(got)-10:])
	}
}

// stallWriter blocks each Write until released, as a throttled disk or a
// pipe whose reader lags does, and keeps what it was given.
type stallWriter struct {
	syncBuffer
	started chan struct{} // a write has begun
	release chan struct{}
}

// stalledBatch returns a log batch writing to a stallWriter, with a
// request running for the rest of the test, so lines gather.
func stalledBatch(t *testing.T) (*stallWriter, *logBatch) {
	out := &stallWriter{started: make(chan struct{}, 64), release: make(chan struct{})}
	b := newLogBatch(out)
	b.active.Add(1)
	t.Cleanup(func() { b.active.Add(-1) })
	return out, b
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.started <- struct{}{}
	<-w.release
	return w.syncBuffer.Write(p)
}

// TestLogBatchWriteDoesNotStall: while a batch is written to a log that
// blocks, by the request that filled it or by the timer, other requests'
// lines are gathered and their requests go on; only a request that filled
// the batch waits for its write. The write held the lock every line takes.
func TestLogBatchWriteDoesNotStall(t *testing.T) {
	long := strings.Repeat("x", logBatchSize) + "\n"
	for _, tc := range []struct {
		name, first string
		waits       bool // the first Write returns only once written
	}{
		{"full batch", long, true},
		{"timer", "first\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, b := stalledBatch(t)

			first := make(chan struct{})
			go func() {
				b.Write([]byte(tc.first))
				close(first)
			}()
			<-out.started // the write has begun (the timer's logBatchDelay later), and blocks
			next := make(chan struct{})
			go func() {
				b.Write([]byte("next\n"))
				close(next)
			}()
			select {
			case <-next:
			case <-time.After(5 * time.Second):
				close(out.release)
				t.Fatal("a request's line waited for the write of a batch")
			}
			if tc.waits {
				select {
				case <-first:
					t.Fatal("the request that filled the batch returned before its write ended")
				default:
				}
			}

			close(out.release)
			<-first
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
			out.mu.Lock()
			defer out.mu.Unlock()
			if got := out.buf.String(); got != tc.first+"next\n" {
				t.Errorf("log holds %d bytes ending %q, want the first write's, then the line gathered meanwhile", len(got), got[max(0, len(got)-12):])
			}
		})
	}
}

// TestLogBatchWriterReturns: the request that writes a batch returns once
// its own is written, though more batches wait: behind a log that never
// catches up it would otherwise write for as long as others keep filling
// batches (with room for four, a pull's p99 was 600 ms behind a pipe
// read at 3 MB/s).
func TestLogBatchWriterReturns(t *testing.T) {
	out, b := stalledBatch(t)

	long := strings.Repeat("x", logBatchSize)
	first := make(chan struct{})
	go func() {
		b.Write([]byte(long))
		close(first)
	}()
	<-out.started // the first batch's write has begun
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { b.Write([]byte(long)) })
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b.qmu.Lock()
		n := len(b.queued)
		b.qmu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d batches queued, want 2", n)
		}
	}
	out.release <- struct{}{} // the first write ends
	select {
	case <-first:
	case <-time.After(5 * time.Second):
		close(out.release)
		t.Fatal("the request that wrote the first batch went on writing the others'")
	}
	close(out.release)
	wg.Wait()
}

// slowWriter takes a while over each write, so batches queue behind it.
type slowWriter struct{ syncBuffer }

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(200 * time.Microsecond)
	return w.syncBuffer.Write(p)
}

// TestLogBatchOrder: lines from many requests, in batches queued behind
// a slow write while more gather, reach the output whole, once each, and
// each request's in the order it wrote them.
func TestLogBatchOrder(t *testing.T) {
	out := &slowWriter{}
	b := newLogBatch(out)
	b.active.Add(1)
	const writers, lines = 8, 60
	pad := strings.Repeat("p", logBatchSize/5)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				b.Write(fmt.Appendf(nil, "%d %d %s\n", w, i, pad))
			}
		})
	}
	wg.Wait()
	b.active.Add(-1)
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for _, line := range strings.Split(strings.TrimSuffix(out.buf.String(), "\n"), "\n") {
		head, p, _ := strings.Cut(line, " "+pad)
		var w, i int
		if _, err := fmt.Sscanf(head, "%d %d", &w, &i); err != nil || p != "" || w < 0 || w >= writers {
			t.Fatalf("line %.40q... is not one written", line)
		}
		if i != next[w] {
			t.Fatalf("writer %d's line %d came where its line %d was due", w, i, next[w])
		}
		next[w]++
	}
	for w, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines in the log, want %d", w, n, lines)
		}
	}
}

// TestLogBatchQueueBounded: behind a write that does not end, at most
// logQueueMax batches wait; further lines wait for room, rather than a
// batch per connection gathering in memory. All go out once the write
// ends.
func TestLogBatchQueueBounded(t *testing.T) {
	out, b := stalledBatch(t)

	long := strings.Repeat("x", logBatchSize)
	const writers = 3 * logQueueMax
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() { b.Write([]byte(long)) })
	}
	<-out.started
	queued := func() int {
		b.qmu.Lock()
		defer b.qmu.Unlock()
		return len(b.queued)
	}
	deadline := time.Now().Add(5 * time.Second)
	for queued() < logQueueMax && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // room for writers that would overfill it
	if n := queued(); n != logQueueMax {
		t.Errorf("%d batches queued behind a stalled write, want %d", n, logQueueMax)
	}
	close(out.release)
	wg.Wait()
	b.Flush()
	out.mu.Lock()
	defer out.mu.Unlock()
	if got, want := out.buf.Len(), writers*len(long); got != want {
		t.Errorf("%d bytes written once the write ended, want %d", got, want)
	}
}
