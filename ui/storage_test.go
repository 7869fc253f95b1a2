package ui

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

func TestStorageHistory(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC()
	// A day of an empty store is still a day: a table row and a flat bar.
	must(t, f.store.RecordUsage(t.Context(), now.AddDate(0, 0, -2), storage.Stats{}))
	for i, b := range []int64{1 << 20, 3 << 20} {
		if err := f.store.RecordUsage(t.Context(), now.AddDate(0, 0, i-1), storage.Stats{BlobBytes: b, Blobs: 5 + i, Repositories: 3}); err != nil {
			t.Fatal(err)
		}
	}
	// carol may pull everything, so she sees the store's totals.
	cfg := f.cfg
	cfg.Users = append(cfg.Users, auth.UserConfig{Name: "carol", Password: cfg.Users[1].Password})
	cfg.Rules = append(cfg.Rules, auth.RuleConfig{Users: []string{"carol"}, Permissions: []string{"pull:**"}})
	svc, err := auth.New(cfg, f.dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f.authed = httptest.NewServer(f.dashboard(t, WithAuth(svc)))
	defer f.authed.Close()
	yesterday := now.AddDate(0, 0, -1).Format(time.DateOnly)
	// Today's is the current count, not the one recorded.
	st, err := f.store.Stats(t.Context())
	must(t, err)
	today := fmt.Sprintf(`{"date":%q,"bytes":%d,"blobs":%d,"repositories":3}`, now.Format(time.DateOnly), st.BlobBytes, st.Blobs)
	for _, c := range []apiCall{
		{name: "open", server: "open", path: "/api/v1/storage/history", wantStatus: 200,
			wantBody: []string{`"bytes":0,`, `{"date":"` + yesterday + `","bytes":1048576,"blobs":5,"repositories":3},` + today + `]}`}},
		{name: "one day", server: "open", path: "/api/v1/storage/history?days=1", wantStatus: 200, wantBody: []string{`{"days":[` + today + `]}`}},
		{name: "bad days", server: "open", path: "/api/v1/storage/history?days=0", wantStatus: 400, wantCode: "INVALID"},
		{name: "page", server: "open", path: "/ui/storage", wantStatus: 200, wantBody: []string{"<svg", `<rect x="0" y="160" width="199" height="0">`, `<rect x="200" y="0" width="199" height="160">`, "<title>" + yesterday + ": 1.0 MiB</title>", "<table", humanBytes(st.BlobBytes)}},
		{name: "anonymous", server: "authed", path: "/api/v1/storage/history", wantStatus: 401, wantCode: "UNAUTHORIZED"},
		{name: "alice sees part", server: "authed", path: "/api/v1/storage/history", header: basic("alice", "alice-pw"), wantStatus: 403, wantCode: "DENIED"},
		{name: "carol sees all", server: "authed", path: "/api/v1/storage/history", header: basic("carol", "bob-pw"), wantStatus: 200, wantBody: []string{today}},
	} {
		c.run(t, f)
	}
}

// TestChartOfEmptyStore: days when nothing was stored still get a bar,
// so a new registry's page shows its first day rather than "nothing".
func TestChartOfEmptyStore(t *testing.T) {
	c := newChart([]storage.Usage{{Day: "2026-12-01"}, {Day: "2026-12-02"}})
	if len(c.Bars) != 2 || c.Bars[1].X != 300 || c.Bars[1].H != 0 || c.Bars[1].Y != chartH {
		t.Fatalf("newChart(two empty days) = %+v, want two flat bars", c.Bars)
	}
}
