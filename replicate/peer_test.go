package replicate

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// TestPeerRateAndRetryAfter copies from this project's registry, served
// in process by Local, to go-containerregistry's: max_rate paces the
// bytes sent, and a 429 with Retry-After holds the next request to the
// target until then.
func TestPeerRateAndRetryAfter(t *testing.T) {
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	local, stop := Local(registry.New(st))
	defer stop()

	target := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	var mu sync.Mutex
	var refusedAt, retriedAt time.Time
	refuse := false
	dst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			mu.Lock()
			if refuse && refusedAt.IsZero() {
				refusedAt = time.Now()
				mu.Unlock()
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			if !refusedAt.IsZero() && retriedAt.IsZero() {
				retriedAt = time.Now()
			}
			mu.Unlock()
		}
		target.ServeHTTP(w, r)
	}))
	defer dst.Close()

	push := func(ref string) {
		img, _ := random.Image(96<<10, 2)
		r, _ := name.ParseReference("localhost/"+ref, name.Insecure)
		if err := remote.Write(r, img, remote.WithTransport(local.Transport)); err != nil {
			t.Fatalf("pushing %s through Local: %v", ref, err)
		}
	}
	push("team/app:v1")
	const rate = 128 << 10
	p, err := newPeer(Remote{Name: "t", URL: dst.URL, Insecure: true, MaxRate: "128KiB/s"}, "push", zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := NewSelection(nil, nil)
	job := Job{From: local, To: p.endpoint, Select: sel, Jobs: 2}
	start := time.Now()
	if err := p.copyAll(ctx, job); err != nil {
		t.Fatalf("copyAll = %v", err)
	}
	took := time.Since(start)
	sent := p.status.get().Bytes
	// The limiter's 32 KiB burst is free; every other byte is paced.
	if min := time.Duration(float64(sent-32<<10) / rate * float64(time.Second)); sent < 192<<10 || took < min*95/100 || took > min*2+time.Second {
		t.Errorf("copyAll of %d bytes at 128KiB/s took %v, want about %v", sent, took, min)
	}

	mu.Lock()
	refuse = true
	mu.Unlock()
	push("team/app:v2")
	err = p.retry(ctx, "copy", func(ctx context.Context) error { return p.copyAll(ctx, job) })
	mu.Lock()
	defer mu.Unlock()
	if err != nil || refusedAt.IsZero() || retriedAt.Sub(refusedAt) < 1950*time.Millisecond {
		t.Errorf("copy after a 429 with Retry-After: 2 = %v; refused at %v, retried %v later, want at least 2s (go-containerregistry alone retries after 1s)", err, refusedAt, retriedAt.Sub(refusedAt))
	}
}
