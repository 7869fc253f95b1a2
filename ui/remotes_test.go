package ui

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nora-registry/nora/replicate"
)

func TestOverviewRemotes(t *testing.T) {
	f := newFixture(t)
	hits := WithMirror(func() (uint64, uint64) { return 3, 1 })
	repl := WithReplication(func() []replicate.RemoteStatus {
		return []replicate.RemoteStatus{{Name: "dr-site", Kind: "push", Queued: 7, Lag: 90 * time.Second, LastError: "connection refused"}}
	})
	f.open = httptest.NewServer(f.dashboard(t, hits, repl))
	defer f.open.Close()
	f.authed = httptest.NewServer(f.dashboard(t, WithAuth(f.svc), hits, repl))
	defer f.authed.Close()
	for _, c := range []apiCall{
		{name: "open", server: "open", path: "/api/v1/overview", wantStatus: 200, wantBody: []string{`"mirror":{"hits":3,"misses":1,"hitRatio":0.75}`,
			`"replication":[{"name":"dr-site","kind":"push","queued":7,"lagSeconds":90,"lastError":"connection refused"}]`}},
		{name: "page", server: "open", path: "/ui/", wantStatus: 200, wantBody: []string{">75.0%<", "<td>dr-site</td>", "<td>1m30s</td>"}},
		// alice sees part of the registry: not its remotes.
		{name: "alice", server: "authed", path: "/api/v1/overview", header: basic("alice", "alice-pw"), wantStatus: 200, notBody: []string{"mirror", "dr-site"}},
		{name: "anonymous page", server: "authed", path: "/ui/", wantStatus: 200, notBody: []string{"Hit ratio", "dr-site"}},
	} {
		c.run(t, f)
	}
}
