package ui

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// TestActivity makes each kind of audit entry through the real registry,
// token service and login form, then reads them back through the API,
// with auth off and on.
func TestActivity(t *testing.T) {
	f := newFixture(t)
	w := storage.NewAuditWriter(f.store, func(err error) { t.Error(err) })
	svc, err := auth.New(f.cfg, f.dir, zerolog.Nop(), auth.WithRobots(f.robots), auth.WithAudit(w))
	if err != nil {
		t.Fatal(err)
	}
	open := httptest.NewServer(registry.New(f.store, registry.WithAudit(w)))
	defer open.Close()
	authed := httptest.NewServer(registry.New(f.store, registry.WithAuthorizer(svc), registry.WithAudit(w)))
	defer authed.Close()
	f.open = httptest.NewServer(f.dashboard(t, WithAudit(w)))
	defer f.open.Close()
	f.authed = httptest.NewServer(f.dashboard(t, WithAuth(svc), WithAudit(w)))
	defer f.authed.Close()

	// A push and a tag delete, anonymous on the open registry.
	accept := map[string]string{"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
	resp, body := send(t, "GET", open.URL+"/v2/team/app/manifests/v1", nil, nil, accept)
	ct := map[string]string{"Content-Type": resp.Header.Get("Content-Type")}
	for _, c := range []struct{ method, path string }{
		{"PUT", "/v2/team/app/manifests/v2"}, {"PUT", "/v2/team/app/manifests/v3"}, {"DELETE", "/v2/team/app/manifests/v2"},
	} {
		if resp, _ := send(t, c.method, open.URL+c.path, nil, bytes.NewReader([]byte(body)), ct); resp.StatusCode >= 300 {
			t.Fatalf("%s %s = %d", c.method, c.path, resp.StatusCode)
		}
	}
	// Refused credentials (a known user's, and a name that might be a
	// password), a denial, a token and a dashboard login.
	send(t, "GET", authed.URL+"/v2/team/app/tags/list", nil, nil, basic("alice", "wrong-pw"))
	send(t, "GET", authed.URL+"/v2/team/app/tags/list", nil, nil, basic("hunter2-secret", "wrong-pw"))
	if resp, _ := send(t, "GET", authed.URL+"/v2/other/tool/tags/list", nil, nil, basic("alice", "alice-pw")); resp.StatusCode != 403 {
		t.Fatalf("alice on other/tool = %d, want 403", resp.StatusCode)
	}
	tok := httptest.NewRequest("GET", "/auth/token?service=nora&scope=repository:team/app:pull", nil)
	tok.SetBasicAuth("alice", "alice-pw")
	svc.TokenHandler().ServeHTTP(httptest.NewRecorder(), tok)
	anon := httptest.NewRequest("GET", "/auth/token?service=nora&scope=repository:public/base:pull", nil)
	svc.TokenHandler().ServeHTTP(httptest.NewRecorder(), anon)
	if _, ck := login(t, f.authed.URL, "alice", "alice-pw"); ck == nil {
		t.Fatal("login as alice set no session cookie")
	}
	w.Close()

	secrets := []string{"alice-pw", "wrong-pw", "hunter2-secret", `"token"`}
	alice, bob := basic("alice", "alice-pw"), basic("bob", "bob-pw")
	for _, c := range []apiCall{
		{name: "all", server: "open", path: "/api/v1/activity", wantStatus: 200, notBody: secrets[:3],
			wantBody: []string{`"kind":"push","identityKind":"anonymous","repository":"team/app","reference":"v2","digest":"sha256:`,
				`"kind":"delete"`, `"kind":"failed","identity":"alice","identityKind":"user"`, `"kind":"failed","remote":"127.0.0.1:`,
				`"kind":"denied","identity":"alice","identityKind":"user","repository":"other/tool"`, `"detail":"pull"`,
				`"kind":"token","identity":"alice"`, `"detail":"repository:team/app:pull"`, `"kind":"login","identity":"alice"`}},
		{name: "no anonymous tokens", server: "open", path: "/api/v1/activity?kind=token", wantStatus: 200, notBody: []string{"public/base"}},
		{name: "kind", server: "open", path: "/api/v1/activity?kind=push", wantStatus: 200, wantBody: []string{`"kind":"push"`}, notBody: []string{`"kind":"delete"`, `"kind":"login"`}},
		{name: "glob", server: "open", path: "/api/v1/activity?repository=other/*", wantStatus: 200, wantBody: []string{`"repository":"other/tool"`}, notBody: []string{`"team/app"`, `"kind":"login"`}},
		{name: "identity", server: "open", path: "/api/v1/activity?identity=alice&kind=login", wantStatus: 200, wantBody: []string{`"kind":"login"`}, notBody: []string{`"kind":"token"`}},
		{name: "page", server: "open", path: "/api/v1/activity?n=1", wantStatus: 200, wantBody: []string{`"kind":"login"`, `"next":`}, notBody: []string{`"kind":"token"`}},
		{name: "bad kind", server: "open", path: "/api/v1/activity?kind=nope", wantStatus: 400, wantCode: "INVALID"},
		{name: "bad before", server: "open", path: "/api/v1/activity?before=x", wantStatus: 400, wantCode: "PAGINATION_NUMBER_INVALID"},
		{name: "page html", server: "open", path: "/ui/activity?kind=push", wantStatus: 200, wantBody: []string{"<table", "team/app", "v3"}},

		// Auth on: repositories the caller may pull, and their own logins.
		{name: "anonymous", server: "authed", path: "/api/v1/activity", wantStatus: 200, wantBody: []string{`"entries":[]`}},
		{name: "alice", server: "authed", path: "/api/v1/activity", header: alice, wantStatus: 200, notBody: append(secrets[:3], "other/tool"),
			wantBody: []string{`"repository":"team/app"`, `"kind":"login","identity":"alice"`, `"kind":"failed","identity":"alice"`}},
		{name: "bob", server: "authed", path: "/api/v1/activity", header: bob, wantStatus: 200, wantBody: []string{`"repository":"other/tool"`}, notBody: []string{"team/app", `"kind":"login"`}},
		{name: "wrong password", server: "authed", path: "/api/v1/activity", header: basic("bob", "x"), wantStatus: 401, wantCode: "UNAUTHORIZED"},
	} {
		c.run(t, f)
	}
	// No secret in the record itself either.
	p, _ := f.store.ListAudit(t.Context(), storage.AuditQuery{Limit: 100})
	for _, e := range p.Entries {
		for _, s := range secrets[:3] {
			if bytes.Contains([]byte(e.Identity+e.Detail+e.Reference), []byte(s)) {
				t.Errorf("audit entry %+v holds %q", e, s)
			}
		}
	}
}
