package ui

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type apiCall struct {
	name       string
	server     string // "open" or "authed"
	method     string
	path       string
	header     map[string]string
	cookie     *http.Cookie
	wantStatus int
	wantCode   string   // error code, if an error
	wantBody   []string // substrings of the body
	notBody    []string // substrings the body must not hold
}

func (c apiCall) run(t *testing.T, f *fixture) {
	t.Helper()
	base := f.open.URL
	if c.server == "authed" {
		base = f.authed.URL
	}
	method := c.method
	if method == "" {
		method = "GET"
	}
	resp, body := send(t, method, base+c.path, c.cookie, nil, c.header)
	if resp.StatusCode != c.wantStatus {
		t.Errorf("%s: %s %s = %d, want %d\n%s", c.name, method, c.path, resp.StatusCode, c.wantStatus, body)
		return
	}
	if c.wantCode != "" {
		var env struct {
			Errors []struct{ Code, Message string }
		}
		if json.Unmarshal([]byte(body), &env) != nil || len(env.Errors) != 1 || env.Errors[0].Code != c.wantCode || env.Errors[0].Message == "" {
			t.Errorf("%s: %s %s body = %s, want error code %s", c.name, method, c.path, body, c.wantCode)
		}
	}
	for _, s := range c.wantBody {
		if !strings.Contains(body, s) {
			t.Errorf("%s: %s %s body = %s, want it to contain %q", c.name, method, c.path, body, s)
		}
	}
	for _, s := range c.notBody {
		if strings.Contains(body, s) {
			t.Errorf("%s: %s %s body = %s, want no %q", c.name, method, c.path, body, s)
		}
	}
}

func basic(user, pw string) map[string]string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pw)
	return map[string]string{"Authorization": r.Header.Get("Authorization")}
}

// token asks the token service for a pull token on team/app as alice.
func token(t *testing.T, f *fixture) map[string]string {
	t.Helper()
	r := httptest.NewRequest("GET", "/auth/token?service=nora&scope=repository:team/app:pull", nil)
	r.SetBasicAuth("alice", "alice-pw")
	w := httptest.NewRecorder()
	f.svc.TokenHandler().ServeHTTP(w, r)
	var resp struct{ Token string }
	if json.Unmarshal(w.Body.Bytes(), &resp); resp.Token == "" {
		t.Fatalf("token endpoint = %d %s", w.Code, w.Body)
	}
	return map[string]string{"Authorization": "Bearer " + resp.Token}
}

func TestAPI(t *testing.T) {
	f := newFixture(t)
	alice, bob := basic("alice", "alice-pw"), basic("bob", "bob-pw")
	_, session := login(t, f.authed.URL, "alice", "alice-pw")
	if session == nil {
		t.Fatal("login as alice set no session cookie")
	}
	img, idx, sig := f.image.String(), f.index.String(), f.sig.String()
	tags := "/api/v1/repositories/team/app/tags"
	man := "/api/v1/repositories/team/app/manifests/" + img
	for _, c := range []apiCall{
		// Auth off: everything is visible to everyone.
		{name: "open overview", server: "open", path: "/api/v1/overview", wantStatus: 200, wantBody: []string{`"repositories":3`, `"tags":4`, `"healthy":true`}},
		{name: "open list", server: "open", path: "/api/v1/repositories", wantStatus: 200, wantBody: []string{`["other/tool","public/base","team/app"]`}},
		{name: "open glob", server: "open", path: "/api/v1/repositories?q=team/*", wantStatus: 200, wantBody: []string{`"repositories":["team/app"]`}},
		{name: "open substring", server: "open", path: "/api/v1/repositories?q=tool", wantStatus: 200, wantBody: []string{`"repositories":["other/tool"]`}},
		{name: "open page 1", server: "open", path: "/api/v1/repositories?n=2", wantStatus: 200, wantBody: []string{`["other/tool","public/base"]`, `"next":"public/base"`}},
		{name: "open page 2", server: "open", path: "/api/v1/repositories?n=2&last=public/base", wantStatus: 200, wantBody: []string{`["team/app"]`}, notBody: []string{`"next"`}},
		{name: "bad n", server: "open", path: "/api/v1/repositories?n=0", wantStatus: 400, wantCode: "PAGINATION_NUMBER_INVALID"},
		{name: "bad glob", server: "open", path: "/api/v1/repositories?q=[", wantStatus: 400, wantCode: "INVALID"},
		{name: "open tags", server: "open", path: tags, wantStatus: 200, wantBody: []string{`"name":"multi"`, `"platforms":["linux/amd64","linux/arm64/v8"]`, `"name":"v1"`, `"digest":"` + img, `"total":2`}},
		{name: "tags page", server: "open", path: tags + "?n=1", wantStatus: 200, wantBody: []string{`"next":"multi"`}, notBody: []string{`"name":"v1"`}},
		{name: "open manifest", server: "open", path: man, wantStatus: 200, wantBody: []string{`"entrypoint":["/app"]`, `"MODE=test"`, `"org.opencontainers.image.title":"app"`, `"layers":[{`, `"digest":"` + sig, `"artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json"`}},
		{name: "open index", server: "open", path: "/api/v1/repositories/team/app/manifests/" + idx, wantStatus: 200, wantBody: []string{`"platform":"linux/arm64/v8"`}},
		{name: "referrer's subject", server: "open", path: "/api/v1/repositories/team/app/manifests/" + sig, wantStatus: 200, wantBody: []string{`"subject":{`, img}},
		{name: "unknown repo", server: "open", path: "/api/v1/repositories/no/such/tags", wantStatus: 404, wantCode: "NAME_UNKNOWN"},
		{name: "unknown manifest", server: "open", path: "/api/v1/repositories/team/app/manifests/sha256:" + strings.Repeat("0", 64), wantStatus: 404, wantCode: "MANIFEST_UNKNOWN"},
		{name: "bad digest", server: "open", path: "/api/v1/repositories/team/app/manifests/sha256:xyz", wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "bad name", server: "open", path: "/api/v1/repositories/Team/App/tags", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "no suffix", server: "open", path: "/api/v1/repositories/team/app", wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "unknown path", server: "open", path: "/api/v1/nothing", wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "no PUT", server: "open", method: "PUT", path: tags, wantStatus: 405, wantCode: "UNSUPPORTED"},

		// Auth on, anonymous: only what anonymous callers may pull.
		{name: "anon overview", server: "authed", path: "/api/v1/overview", wantStatus: 200, wantBody: []string{`"repositories":1`, `"tags":1`}},
		{name: "anon list", server: "authed", path: "/api/v1/repositories", wantStatus: 200, wantBody: []string{`{"repositories":["public/base"]}`}},
		{name: "anon tags refused", server: "authed", path: tags, wantStatus: 401, wantCode: "UNAUTHORIZED"},
		{name: "anon manifest refused", server: "authed", path: man, wantStatus: 401, wantCode: "UNAUTHORIZED"},
		{name: "anon public tags", server: "authed", path: "/api/v1/repositories/public/base/tags", wantStatus: 200},
		{name: "wrong password", server: "authed", path: "/api/v1/overview", header: basic("alice", "nope"), wantStatus: 401, wantCode: "UNAUTHORIZED"},

		// Allowed user (Basic, session, Bearer) and refused user.
		{name: "alice overview", server: "authed", path: "/api/v1/overview", header: alice, wantStatus: 200, wantBody: []string{`"repositories":2`, `"tags":3`}},
		{name: "alice list", server: "authed", path: "/api/v1/repositories", header: alice, wantStatus: 200, wantBody: []string{`["public/base","team/app"]`}},
		{name: "alice tags", server: "authed", path: tags, header: alice, wantStatus: 200, wantBody: []string{`"name":"v1"`}},
		{name: "alice manifest", server: "authed", path: man, header: alice, wantStatus: 200, wantBody: []string{`"entrypoint":["/app"]`}},
		{name: "alice other", server: "authed", path: "/api/v1/repositories/other/tool/tags", header: alice, wantStatus: 403, wantCode: "DENIED"},
		{name: "session tags", server: "authed", path: tags, cookie: session, wantStatus: 200, wantBody: []string{`"name":"v1"`}},
		{name: "session list", server: "authed", path: "/api/v1/repositories", cookie: session, wantStatus: 200, wantBody: []string{`["public/base","team/app"]`}},
		{name: "bearer tags", server: "authed", path: tags, header: token(t, f), wantStatus: 200, wantBody: []string{`"name":"v1"`}},
		{name: "bearer other", server: "authed", path: "/api/v1/repositories/other/tool/tags", header: token(t, f), wantStatus: 403, wantCode: "DENIED"},
		{name: "bad bearer", server: "authed", path: tags, header: map[string]string{"Authorization": "Bearer x.y.z"}, wantStatus: 401, wantCode: "UNAUTHORIZED"},
		{name: "bob list", server: "authed", path: "/api/v1/repositories", header: bob, wantStatus: 200, wantBody: []string{`["other/tool","public/base"]`}, notBody: []string{"team/app"}},
		{name: "bob overview", server: "authed", path: "/api/v1/overview", header: bob, wantStatus: 200, wantBody: []string{`"repositories":2`}},
		{name: "bob tags refused", server: "authed", path: tags, header: bob, wantStatus: 403, wantCode: "DENIED"},
		{name: "bob manifest refused", server: "authed", path: man, header: bob, wantStatus: 403, wantCode: "DENIED"},
		{name: "bob glob hides", server: "authed", path: "/api/v1/repositories?q=team/**", header: bob, wantStatus: 200, wantBody: []string{`"repositories":[]`}},
	} {
		c.run(t, f)
	}
}
