package mirror_test

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetrics: each request is counted by upstream and result, failed
// upstream requests by class, and upstream bytes.
func TestMetrics(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:1", 4096, 2)
	u := hub(up)
	u.Revalidate = "0s"
	srv, _, m := newMirrorWith(t, nil, u)
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/docker.io/library/app:1"
	for range 2 {
		if _, err := pull(t, ref); err != nil {
			t.Fatal(err)
		}
		m.Settle()
	}
	up.mode.Store(down)
	get(t, "GET", srv.URL+"/v2/docker.io/library/app/manifests/1", "Accept", manifestAccept)

	// First pull: the manifest, the config and two layers are misses.
	// Second: the tag is revalidated, the blobs are hits. Then a
	// stale serve while upstream answers 503.
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nora_mirror_requests_total", map[string]string{"upstream": "hub", "result": "miss"}, 4},
		{"nora_mirror_requests_total", map[string]string{"upstream": "hub", "result": "revalidated"}, 1},
		{"nora_mirror_requests_total", map[string]string{"upstream": "hub", "result": "stale"}, 1},
		{"nora_mirror_upstream_errors_total", map[string]string{"upstream": "hub", "class": "5xx"}, 1},
		{"nora_mirror_upstream_requests_total", map[string]string{"upstream": "hub", "class": "5xx"}, 1},
	} {
		if got := gathered(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The first pull's manifest GET and three blob GETs, and the
	// second's manifest HEAD: at least 5.
	if got := gathered(t, reg, "nora_mirror_upstream_requests_total", map[string]string{"class": "2xx"}); got < 5 {
		t.Errorf("nora_mirror_upstream_requests_total{class=2xx} = %v, want at least 5", got)
	}
	// validate.Image reads each blob more than once: at least 3 hits.
	if got := gathered(t, reg, "nora_mirror_requests_total", map[string]string{"result": "hit"}); got < 3 {
		t.Errorf("nora_mirror_requests_total{result=hit} = %v, want at least 3", got)
	}
	// Hits agrees with the series: cache serves against upstream fetches.
	hits, misses := m.Hits()
	result := func(r string) float64 {
		return gathered(t, reg, "nora_mirror_requests_total", map[string]string{"result": r})
	}
	if want := result("hit") + result("revalidated") + result("stale"); float64(hits) != want {
		t.Errorf("Hits() hits = %d, want %v", hits, want)
	}
	if want := result("miss") + result("coalesced"); float64(misses) != want {
		t.Errorf("Hits() misses = %d, want %v", misses, want)
	}
	size := int64(0)
	layers, _ := img.Layers()
	for _, l := range layers {
		n, _ := l.Size()
		size += n
	}
	if got := gathered(t, reg, "nora_mirror_upstream_bytes_total", nil); got < float64(size) {
		t.Errorf("nora_mirror_upstream_bytes_total = %v, want at least the layers' %d bytes", got, size)
	}
}

// gathered returns the sum of the series of metric name whose labels
// include labels.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := 0
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v == lp.GetValue() {
					match++
				}
			}
			if match == len(labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestReuseHeldCountsHit: a blob GET that finds the blob unlinked, and by
// the time it checks again linked (by a fetch that ended meanwhile), is
// served from the cache without asking upstream: a hit, not a
// revalidation (which says upstream confirmed something).
func TestReuseHeldCountsHit(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:1", 4096, 1)
	srv, _, m := newMirrorWith(t, nil, hub(up))
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := pull(t, strings.TrimPrefix(srv.URL, "http://")+"/docker.io/library/app:1"); err != nil {
		t.Fatal(err)
	}
	m.Settle()
	rt, ok := m.Route(t.Context(), "docker.io/library/app", "", true)
	if !ok {
		t.Fatal("no route for docker.io/library/app")
	}
	before := func(r string) float64 {
		return gathered(t, reg, "nora_mirror_requests_total", map[string]string{"result": r})
	}
	// Upstream down: any request to it would fail the call.
	up.mode.Store(down)
	hits, revalidated := before("hit"), before("revalidated")
	linked, err := m.Reuse(t.Context(), rt, digest.Digest(layerDigest(t, img, 0).String()))
	if !linked || err != nil {
		t.Fatalf("Reuse of a blob already linked = %t, %v; want true", linked, err)
	}
	if got := before("hit") - hits; got != 1 {
		t.Errorf("hits counted = %v, want 1", got)
	}
	if got := before("revalidated") - revalidated; got != 0 {
		t.Errorf("revalidations counted = %v, want 0", got)
	}
}
