package ui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/gc"
	"github.com/nora-registry/nora/retention"
	"github.com/nora-registry/nora/storage"
)

// storeMaintenance runs the real GC and retention on a store, as the
// server's maintenance does, and records passes.
type storeMaintenance struct {
	store *storage.Store
	rules *retention.Rules
	mu    sync.Mutex
	log   []Pass
}

func (m *storeMaintenance) RunGC() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	started := time.Now()
	res, err := gc.Run(context.Background(), m.store, gc.Options{DeleteUntagged: true}, nil, zerolog.Nop())
	m.log = append([]Pass{{Kind: "gc", By: "dashboard", Started: started, Manifests: res.Manifests, Blobs: res.Blobs, Bytes: res.Bytes}}, m.log...)
	return err
}

func (m *storeMaintenance) ApplyRetention() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	plan, err := m.RetentionPlan(context.Background())
	if err != nil {
		return err
	}
	res, err := retention.Apply(context.Background(), m.store, now, plan, nil)
	m.log = append([]Pass{{Kind: "retention", By: "dashboard", Started: now, Tags: res.Tags}}, m.log...)
	return err
}

func (m *storeMaintenance) RetentionPlan(ctx context.Context) ([]retention.Decision, error) {
	tags, err := retention.Collect(ctx, m.store, nil)
	return retention.Plan(time.Now(), tags, m.rules), err
}

func (m *storeMaintenance) HasRetention() bool { return true }

// Reclaimable measures at once, with no grace period.
func (m *storeMaintenance) Reclaimable() *Reclaimable {
	p, err := gc.Plan(context.Background(), m.store, gc.Options{DeleteUntagged: true})
	if err != nil {
		return nil
	}
	return &Reclaimable{Bytes: p.Bytes, WaitingBytes: p.WaitingBytes, MeasuredAt: p.Now}
}

func (m *storeMaintenance) Passes() []Pass {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Pass(nil), m.log...)
}

func TestGCPage(t *testing.T) {
	f := newFixture(t)
	rules, err := retention.Compile(retention.Config{Rules: []retention.Rule{{Repositories: []string{"team/**"}, Tags: []string{"v*"}, KeepLast: 0, OlderThan: "0s"}}})
	if err != nil {
		t.Fatal(err)
	}
	m := &storeMaintenance{store: f.store, rules: rules}
	del := withDeleter(t, f, WithMaintenance(m))
	open := httptest.NewServer(f.dashboard(t, WithMaintenance(m)))
	defer open.Close()
	carol, js := basic("carol", "carol-pw"), map[string]string{"Content-Type": "application/json"}

	// Who may: admins by session or Basic, everyone with auth off.
	for _, c := range []struct {
		name, base, method, path string
		header                   map[string]string
		wantStatus               int
		want                     string
	}{
		{"anonymous", del.URL, "GET", "/api/v1/maintenance", nil, 401, `"UNAUTHORIZED"`},
		{"not an admin", del.URL, "GET", "/api/v1/maintenance", basic("alice", "alice-pw"), 403, `"DENIED"`},
		{"not an admin runs", del.URL, "POST", "/api/v1/maintenance/gc", withHeader(basic("alice", "alice-pw"), "Content-Type", "application/json"), 403, `"DENIED"`},
		{"bearer token", del.URL, "GET", "/api/v1/maintenance", token(t, f), 403, `"DENIED"`},
		{"plan", del.URL, "GET", "/api/v1/maintenance", carol, 200, `"repository":"team/app","tag":"v1","digest":"` + f.image.String()},
		{"unknown pass", del.URL, "POST", "/api/v1/maintenance/fly", withHeader(carol, "Content-Type", "application/json"), 400, `"INVALID"`},
		{"cross-site", del.URL, "POST", "/api/v1/maintenance/gc", withHeader(carol, "Content-Type", "application/json", "Origin", "http://evil.example"), 403, "cross-site"},
		{"run gc, auth off", open.URL, "POST", "/api/v1/maintenance/gc", js, 200, `"running":false,"pass":{"kind":"gc","by":"dashboard"`},
		{"listed", del.URL, "GET", "/api/v1/maintenance", carol, 200, `"passes":[{"kind":"gc"`},
	} {
		resp, body := send(t, c.method, c.base+c.path, nil, nil, c.header)
		if resp.StatusCode != c.wantStatus || !strings.Contains(body, c.want) {
			t.Errorf("%s: %s %s = %d %s, want %d with %s", c.name, c.method, c.path, resp.StatusCode, body, c.wantStatus, c.want)
		}
	}

	// The page: carol applies retention, which deletes team/app:v1.
	_, alice := login(t, del.URL, "alice", "alice-pw")
	if resp, body := send(t, "GET", del.URL+"/ui/gc", alice, nil, nil); resp.StatusCode != 403 || strings.Contains(body, `href="/ui/gc"`) {
		t.Errorf("alice's GC page = %d\n%s", resp.StatusCode, body)
	}
	_, ck := login(t, del.URL, "carol", "carol-pw")
	body, tok := pageCSRF(t, del.URL+"/ui/gc", ck)
	if !strings.Contains(body, "Run a GC pass") || !strings.Contains(body, "<strong class=\"error\">delete</strong>") || !strings.Contains(body, "1 tag and untagged manifests to delete") {
		t.Fatalf("carol's GC page:\n%s", body)
	}
	post := func(v url.Values) *http.Response {
		resp, _ := send(t, "POST", del.URL+"/ui/gc", ck, strings.NewReader(v.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		return resp
	}
	if resp := post(url.Values{"run": {"retention"}}); resp.StatusCode != 403 {
		t.Errorf("a run without a CSRF token = %d, want 403", resp.StatusCode)
	}
	if resp := post(url.Values{"run": {"retention"}, "csrf": {tok}}); resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/gc?ran=done" {
		t.Fatalf("apply retention = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if tags, _, _ := f.store.Tags(t.Context(), "team/app", "", -1); len(tags) != 1 || tags[0] != "multi" {
		t.Errorf("tags after retention: %v, want [multi]", tags)
	}
	if _, body := send(t, "GET", del.URL+"/ui/gc?ran=done", ck, nil, nil); !strings.Contains(body, "The pass ended") || !strings.Contains(body, "<th scope=\"row\">retention</th>") || !strings.Contains(body, "1 tags, 0 untagged manifests") {
		t.Errorf("after retention:\n%s", body)
	}
}

func (m *storeMaintenance) NextRun() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }

// TestOverviewMaintenance: the overview names the last GC and retention
// passes and the next scheduled run, to admins and with auth off only.
func TestOverviewMaintenance(t *testing.T) {
	f := newFixture(t)
	m := &storeMaintenance{store: f.store, rules: &retention.Rules{}}
	if err := m.RunGC(); err != nil {
		t.Fatal(err)
	}
	admin := withDeleter(t, f, WithMaintenance(m))
	open := httptest.NewServer(f.dashboard(t, WithMaintenance(m)))
	defer open.Close()
	for _, c := range []struct {
		base   string
		header map[string]string
		want   bool
	}{{open.URL, nil, true}, {admin.URL, basic("carol", "carol-pw"), true}, {admin.URL, basic("alice", "alice-pw"), false}} {
		_, body := send(t, "GET", c.base+"/api/v1/overview", nil, nil, c.header)
		has := strings.Contains(body, `"maintenance":{"lastGC":{"kind":"gc"`) && strings.Contains(body, `"next":"2030-01-02T03:04:05Z"`) &&
			strings.Contains(body, `"reclaimable":{"bytes":0,"waitingBytes":0`)
		if has != c.want {
			t.Errorf("overview for %v names the maintenance runs: %v, want %v\n%s", c.header, has, c.want, body)
		}
	}
	if _, body := send(t, "GET", open.URL+"/ui/", nil, nil, nil); !strings.Contains(body, "Last GC pass:") || !strings.Contains(body, "2030-01-02") ||
		!strings.Contains(body, `<dt>Reclaimable by GC</dt><dd id="reclaimable">0 B</dd>`) {
		t.Errorf("overview page without the maintenance runs:\n%s", body)
	}
}
