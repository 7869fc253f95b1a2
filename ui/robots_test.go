package ui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestRobotsAPI(t *testing.T) {
	f := newFixture(t)
	del := withDeleter(t, f)
	open := httptest.NewServer(f.dashboard(t, WithRobots(f.robots)))
	defer open.Close()
	carol := basic("carol", "carol-pw")
	js := func(h map[string]string) map[string]string { return withHeader(h, "Content-Type", "application/json") }
	for _, c := range []struct {
		name, server, method, path, body string
		header                           map[string]string
		wantStatus                       int
		want                             string
	}{
		{"anonymous", "del", "GET", "/api/v1/robots", "", nil, 401, `"UNAUTHORIZED"`},
		{"not an admin", "del", "GET", "/api/v1/robots", "", basic("alice", "alice-pw"), 403, `admin:*`},
		{"bearer token", "del", "GET", "/api/v1/robots", "", token(t, f), 403, `"DENIED"`},
		{"empty list", "del", "GET", "/api/v1/robots", "", carol, 200, `{"robots":[]}`},
		{"create", "del", "POST", "/api/v1/robots", `{"name":"ci","permissions":["pull:team/**"],"ttl":"24h"}`, js(carol), 201, `"token":"`},
		{"taken", "del", "POST", "/api/v1/robots", `{"name":"ci","permissions":["pull:team/**"]}`, js(carol), 409, `"CONFLICT"`},
		{"bad permission", "del", "POST", "/api/v1/robots", `{"name":"x","permissions":["fly:**"]}`, js(carol), 400, `"INVALID"`},
		{"bad ttl", "del", "POST", "/api/v1/robots", `{"name":"x","ttl":"soon"}`, js(carol), 400, `"INVALID"`},
		{"cross-site", "del", "POST", "/api/v1/robots", `{"name":"x"}`, js(withHeader(carol, "Origin", "http://evil.example")), 403, `cross-site`},
		{"listed", "del", "GET", "/api/v1/robots", "", carol, 200, `"name":"ci","permissions":["pull:team/**"]`},
		{"revoke", "del", "DELETE", "/api/v1/robots/ci", "", carol, 200, `{"revoked":"ci"}`},
		{"revoked", "del", "DELETE", "/api/v1/robots/ci", "", carol, 404, `"NOT_FOUND"`},
		{"auth off", "open", "POST", "/api/v1/robots", `{"name":"open"}`, js(nil), 201, `"name":"open"`},
	} {
		base := del.URL
		if c.server == "open" {
			base = open.URL
		}
		resp, body := send(t, c.method, base+c.path, nil, strings.NewReader(c.body), c.header)
		if resp.StatusCode != c.wantStatus || !strings.Contains(body, c.want) {
			t.Errorf("%s: %s %s = %d %s, want %d with %s", c.name, c.method, c.path, resp.StatusCode, body, c.wantStatus, c.want)
		}
	}
}

var shownToken = regexp.MustCompile(`<code>(nora_[A-Za-z0-9_-]+)</code>`)

func TestRobotsPage(t *testing.T) {
	f := newFixture(t)
	del := withDeleter(t, f)
	if resp, _ := send(t, "GET", del.URL+"/ui/robots", nil, nil, nil); resp.StatusCode != 303 {
		t.Errorf("anonymous robots page = %d, want a redirect to log in", resp.StatusCode)
	}
	_, alice := login(t, del.URL, "alice", "alice-pw")
	if resp, body := send(t, "GET", del.URL+"/ui/robots", alice, nil, nil); resp.StatusCode != 403 || strings.Contains(body, `href="/ui/robots"`) {
		t.Errorf("alice's robots page = %d\n%s", resp.StatusCode, body)
	}
	_, carol := login(t, del.URL, "carol", "carol-pw")
	body, tok := pageCSRF(t, del.URL+"/ui/robots", carol)
	if !strings.Contains(body, `href="/ui/robots"`) || !strings.Contains(body, "Create a robot token") {
		t.Fatalf("carol's robots page:\n%s", body)
	}
	post := func(path string, v url.Values) (*http.Response, string) {
		return send(t, "POST", del.URL+path, carol, strings.NewReader(v.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	}
	if resp, _ := post("/ui/robots", url.Values{"name": {"ci"}, "permissions": {"pull:team/**"}}); resp.StatusCode != 403 {
		t.Errorf("create without a CSRF token = %d, want 403", resp.StatusCode)
	}
	resp, body := post("/ui/robots", url.Values{"name": {"ci"}, "permissions": {"pull:team/**, pull:public/**"}, "ttl": {"1h"}, "csrf": {tok}})
	m := shownToken.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil || !strings.Contains(body, "pull:team/** pull:public/**") {
		t.Fatalf("create = %d\n%s", resp.StatusCode, body)
	}
	if _, body := send(t, "GET", del.URL+"/ui/robots", carol, nil, nil); strings.Contains(body, m[1]) {
		t.Error("the secret is shown again")
	}
	// The robot logs in with its token; revoking it ends that session.
	_, robot := login(t, del.URL, "ci", m[1])
	if robot == nil {
		t.Fatal("the new robot token does not log in")
	}
	if resp, _ := send(t, "GET", del.URL+"/api/v1/repositories/team/app/tags", robot, nil, nil); resp.StatusCode != 200 {
		t.Errorf("robot session = %d, want 200", resp.StatusCode)
	}
	resp, _ = post("/ui/robots/ci/revoke", url.Values{"csrf": {tok}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/ui/robots?revoked=ci" {
		t.Fatalf("revoke = %d to %q", resp.StatusCode, loc)
	}
	if _, body := send(t, "GET", del.URL+"/ui/robots?revoked=ci", carol, nil, nil); !strings.Contains(body, "Revoked the robot token ci.") || strings.Contains(body, "<th scope=\"row\">ci</th>") {
		t.Errorf("after the revoke:\n%s", body)
	}
	if resp, _ := send(t, "GET", del.URL+"/api/v1/repositories/team/app/tags", robot, nil, nil); resp.StatusCode != 401 {
		t.Errorf("revoked robot's session = %d, want 401", resp.StatusCode)
	}
}
