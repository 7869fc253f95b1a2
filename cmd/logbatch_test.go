package cmd

import (
	"net/http"
	"net/http/httptest"
	"strings"
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
