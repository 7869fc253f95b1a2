package ui

import (
	"net/http"
	"strings"
	"testing"
)

func TestPages(t *testing.T) {
	f := newFixture(t)
	_, bob := login(t, f.authed.URL, "bob", "bob-pw")
	img, sig := f.image.String(), f.sig.String()
	for _, tc := range []struct {
		name, server, path string
		cookie             *http.Cookie
		status             int
		want               []string
		location           string
	}{
		{name: "root", server: "open", path: "/", status: 302, location: "/ui/"},
		{name: "overview", server: "open", path: "/ui/", status: 200, want: []string{"<h1>Overview</h1>", `id="repositories">3<`}},
		{name: "list", server: "open", path: "/ui/repositories", status: 200, want: []string{`href="/ui/repositories/team/app"`, "other/tool"}},
		{name: "search", server: "open", path: "/ui/repositories?q=team/**", status: 200, want: []string{"team/app"}},
		{name: "bad glob", server: "open", path: "/ui/repositories?q=[", status: 200, want: []string{`class="error"`}},
		{name: "repository", server: "open", path: "/ui/repositories/team/app", status: 200, want: []string{"docker pull 127.0.0.1", "podman pull", "ctr images pull --plain-http", "linux/arm64/v8", img[:19]}},
		{name: "manifest", server: "open", path: "/ui/repositories/team/app/manifests/" + img, status: 200, want: []string{"/app", "MODE=test", "org.opencontainers.image.title=app", "<h2>Layers</h2>", sig[:19], "application/vnd.dev.cosign.artifact.sig.v1"}},
		{name: "unknown repo", server: "open", path: "/ui/repositories/no/such", status: 404},
		{name: "unknown page", server: "open", path: "/ui/nothing", status: 404},
		{name: "login off", server: "open", path: "/ui/login", status: 303, location: "/ui/"},
		{name: "anon overview", server: "authed", path: "/ui/", status: 200, want: []string{`href="/ui/login"`, `id="repositories">1<`, "to see the repositories you may pull"}},
		{name: "anon repo", server: "authed", path: "/ui/repositories/team/app", status: 303, location: "/ui/login?next=%2Fui%2Frepositories%2Fteam%2Fapp"},
		{name: "login form", server: "authed", path: "/ui/login?next=/ui/repositories", status: 200, want: []string{`<label for="password">`, `value="/ui/repositories"`}},
		{name: "bob refused", server: "authed", path: "/ui/repositories/team/app", cookie: bob, status: 403},
		{name: "bob list", server: "authed", path: "/ui/repositories", cookie: bob, status: 200, want: []string{"other/tool", "Log out", `name="csrf"`}},
	} {
		base := f.open.URL
		if tc.server == "authed" {
			base = f.authed.URL
		}
		resp, body := send(t, "GET", base+tc.path, tc.cookie, nil, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: GET %s = %d, want %d\n%s", tc.name, tc.path, resp.StatusCode, tc.status, body)
			continue
		}
		if tc.location != "" && resp.Header.Get("Location") != tc.location {
			t.Errorf("%s: GET %s Location = %q, want %q", tc.name, tc.path, resp.Header.Get("Location"), tc.location)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: GET %s body lacks %q:\n%s", tc.name, tc.path, w, body)
			}
		}
		if tc.name == "bob list" && strings.Contains(body, "team/app") {
			t.Errorf("bob's list shows team/app:\n%s", body)
		}
	}
}

// TestFirstPageWeight keeps the overview, with its stylesheet and script,
// under 100 KB, and checks that every asset is local.
func TestFirstPageWeight(t *testing.T) {
	f := newFixture(t)
	resp, body := send(t, "GET", f.open.URL+"/ui/", nil, nil, nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want default-src 'self'", csp)
	}
	total := len(body)
	for _, asset := range []string{"/ui/static/style.css", "/ui/static/app.js"} {
		if !strings.Contains(body, `"`+asset+`"`) {
			t.Errorf("overview does not link %s", asset)
		}
		r, b := send(t, "GET", f.open.URL+asset, nil, nil, nil)
		if r.StatusCode != 200 {
			t.Fatalf("GET %s = %d", asset, r.StatusCode)
		}
		total += len(b)
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("overview names another host:\n%s", body)
	}
	if total > 100<<10 {
		t.Errorf("overview with its assets = %d bytes, want under 100 KB", total)
	}
	t.Logf("overview with its assets: %d bytes", total)
}
