package cmd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestIdleTrimmerTrimsOnceAfterQuiet(t *testing.T) {
	var released atomic.Int32
	trim := &idleTrimmer{after: 40 * time.Millisecond, release: func() { released.Add(1) }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go trim.run(ctx)
	h := trim.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	if trim.dirty.Load() {
		t.Fatal("dirty before any request")
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if !trim.dirty.Load() {
		t.Fatal("dirty = false after a request, want true")
	}
	deadline := time.Now().Add(2 * time.Second)
	for trim.dirty.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if trim.dirty.Load() {
		t.Fatal("no trim after the server went quiet")
	}
	if n := trim.active.Load(); n != 0 {
		t.Fatalf("active = %d after requests ended, want 0", n)
	}
	if n := released.Load(); n != 1 {
		t.Fatalf("release called %d times by one trim, want 1", n)
	}
}
