package ui

import (
	"testing"
	"time"
)

// TestOverviewRecountsInBackground: a stale snapshot is served at once
// and replaced by a recount that sees what changed since.
func TestOverviewRecountsInBackground(t *testing.T) {
	f := newFixture(t)
	h, err := New(DefaultConfig(), f.store, f.dir)
	must(t, err)
	o, err := h.overview(t.Context(), caller{id: open})
	if err != nil || o.Repositories != 3 {
		t.Fatalf("overview = %+v, %v; want 3 repositories", o, err)
	}
	must(t, f.store.DeleteTag(t.Context(), "public/base", "1"))
	h.stats.mu.Lock()
	h.stats.snap.at = time.Now().Add(-statsMaxAge)
	h.stats.mu.Unlock()
	if o, _ := h.overview(t.Context(), caller{id: open}); o.Tags != 4 {
		t.Errorf("stale overview: tags = %d, want the snapshot's 4 served at once", o.Tags)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		o, _ := h.overview(t.Context(), caller{id: open})
		if o.Tags == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("overview after a recount: tags = %d, want 3", o.Tags)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestViewingIsNotUse: browsing a repository and its manifests is not a
// client's use of them, which would keep them from GC for a while.
func TestViewingIsNotUse(t *testing.T) {
	f := newFixture(t)
	before := usedTimes(t, f)
	for _, path := range []string{"/ui/repositories/team/app", "/ui/repositories/team/app/manifests/" + f.image.String(), "/ui/repositories/team/app/manifests/" + f.index.String()} {
		if resp, _ := send(t, "GET", f.open.URL+path, nil, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
	}
	after := usedTimes(t, f)
	for d, u := range after {
		if !u.Equal(before[d]) {
			t.Errorf("manifest %s: used %v after viewing, was %v", d, u, before[d])
		}
	}
}

func usedTimes(t *testing.T, f *fixture) map[string]time.Time {
	t.Helper()
	r, err := f.store.Repository(t.Context(), "team/app")
	must(t, err)
	out := map[string]time.Time{}
	for _, m := range r.Manifests {
		out[m.Digest.String()] = m.Used
	}
	return out
}
