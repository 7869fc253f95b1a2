package mirror_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nora-registry/nora/mirror"
)

// TestEvictOverAllUpstreams: with [mirror] max_size, two upstreams
// together past it lose the image pulled least recently of either (b),
// though the upstream that grew is under any cap alone; with an
// upstream's own max_size instead, that upstream loses its least recent
// image (a) and the other keeps its older one.
func TestEvictOverAllUpstreams(t *testing.T) {
	defer mirror.SetEvictAfter(0)()
	for _, tc := range []struct {
		name              string
		total, hubMax     string
		evicted, kept     string
		hubGone, ghcrGone float64
	}{
		{"total cap", "250KiB", "", "ghcr.io/org/b", "docker.io/library/a", 0, 1}, // two images fit, not three
		{"upstream cap", "", "150KiB", "docker.io/library/a", "ghcr.io/org/b", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			hubUp, ghcrUp := newGGCRUpstream(t), newGGCRUpstream(t)
			push(t, hubUp.host+"/library/a:1", 100<<10, 1)
			push(t, hubUp.host+"/library/c:1", 100<<10, 1)
			push(t, ghcrUp.host+"/org/b:1", 100<<10, 1)
			h := hub(hubUp)
			h.MaxSize = tc.hubMax
			ghcr := mirror.Upstream{Name: "ghcr", URL: ghcrUp.URL, Insecure: true, Hosts: []string{"ghcr.io"}}
			cfg := mirror.Config{Upstreams: []mirror.Upstream{h, ghcr}, MaxSize: tc.total}
			srv, st, m, stop := startMirror(t, t.TempDir(), cfg)
			t.Cleanup(stop)
			reg := prometheus.NewRegistry()
			if err := m.Register(reg); err != nil {
				t.Fatal(err)
			}
			host := strings.TrimPrefix(srv.URL, "http://")
			for _, ref := range []string{"ghcr.io/org/b:1", "docker.io/library/a:1", "docker.io/library/c:1"} {
				if _, err := pull(t, host+"/"+ref); err != nil {
					t.Fatalf("pull %s: %v", ref, err)
				}
			}
			// No Evict call: the fetches start a pass by themselves.
			waitEvicted(t, st, nil, tc.evicted)
			if err := m.Evict(ctx); err != nil { // waits for that pass to end
				t.Fatal(err)
			}
			for _, repo := range []string{tc.kept, "docker.io/library/c"} {
				if _, err := st.GetManifest(ctx, repo, "1"); err != nil {
					t.Errorf("%s:1 was evicted: %v", repo, err)
				}
			}
			for up, want := range map[string]float64{"hub": tc.hubGone, "ghcr": tc.ghcrGone} {
				if got := gathered(t, reg, "nora_mirror_evictions_total", map[string]string{"upstream": up}); got != want {
					t.Errorf("nora_mirror_evictions_total{upstream=%q} = %v, want %v", up, got, want)
				}
			}
		})
	}
}
