package ui

import (
	"net/http/httptest"
	"testing"

	"github.com/nora-registry/nora/storage"
)

// TestDeletesAudited: a tag and a repository deleted from the dashboard
// are in the audit record, as a DELETE on /v2/ would be.
func TestDeletesAudited(t *testing.T) {
	f := newFixture(t)
	w := storage.NewAuditWriter(f.store, func(err error) { t.Error(err) })
	srv := httptest.NewServer(f.dashboard(t, WithAudit(w)))
	defer srv.Close()
	for _, path := range []string{"/api/v1/repositories/team/app/tags/multi", "/api/v1/repositories/other/tool"} {
		if resp, body := send(t, "DELETE", srv.URL+path, nil, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("DELETE %s = %d %s", path, resp.StatusCode, body)
		}
	}
	w.Close()
	p, err := f.store.ListAudit(t.Context(), storage.AuditQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range p.Entries {
		if e.Kind == storage.AuditDelete {
			got[e.Repository+":"+e.Reference] = true
		}
	}
	if !got["team/app:multi"] || !got["other/tool:"] {
		t.Errorf("audit deletes = %v, want team/app:multi and other/tool", got)
	}
}
