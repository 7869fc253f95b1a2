package mirror_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestConfiguredTimeouts: timeout ends a manifest fetch with nothing
// cached, revalidate_timeout ends the HEAD of a cached tag (served stale),
// and stale_retry is how long it then stays stale without asking again.
func TestConfiguredTimeouts(t *testing.T) {
	inner := newGGCRUpstream(t)
	var hang atomic.Bool
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() && strings.Contains(r.URL.Path, "/manifests/") {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		inner.Config.Handler.ServeHTTP(w, r)
	}))
	push(t, up.host+"/library/cached:1", 1024, 1)
	push(t, up.host+"/library/cold:1", 1024, 1)
	u := hub(up)
	u.Revalidate = "0s"
	u.Timeout, u.RevalidateTimeout, u.StaleRetry = "300ms", "200ms", "1h"
	srv, _ := newMirror(t, u)
	manifest := func(name string) (int, string, time.Duration) {
		start := time.Now()
		resp, _ := get(t, "GET", srv.URL+"/v2/docker.io/library/"+name+"/manifests/1", "Accept", manifestAccept)
		return resp.StatusCode, resp.Header.Get("Warning"), time.Since(start)
	}
	if code, _, _ := manifest("cached"); code != 200 {
		t.Fatalf("GET cached:1 = %d, want 200", code)
	}

	hang.Store(true)
	if code, _, took := manifest("cold"); code != http.StatusServiceUnavailable || took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("GET cold:1 with upstream hanging = %d after %v, want 503 after the 300ms timeout", code, took)
	}
	if code, warning, took := manifest("cached"); code != 200 || warning == "" || took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("GET cached:1 with upstream hanging = %d (Warning %q) after %v, want 200 stale after the 200ms revalidate_timeout", code, warning, took)
	}
	n := up.manifestReqs.Load()
	if code, warning, _ := manifest("cached"); code != 200 || warning == "" || up.manifestReqs.Load() != n {
		t.Errorf("GET cached:1 again = %d (Warning %q) after %d upstream requests, want 200 stale with none within stale_retry", code, warning, up.manifestReqs.Load()-n)
	}
}
