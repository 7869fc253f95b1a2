package ui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
)

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf reads the CSRF token from a page rendered for the session.
func csrfOf(t *testing.T, base string, ck *http.Cookie) string {
	t.Helper()
	_, body := send(t, "GET", base+"/ui/", ck, nil, nil)
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("GET /ui/ with a session: no CSRF token in\n%s", body)
	}
	return m[1]
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	resp, ck := login(t, f.authed.URL, "alice", "alice-pw")
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/repositories" || ck == nil {
		t.Fatalf("login = %d Location %q cookie %v, want 303 to /ui/repositories with a cookie", resp.StatusCode, resp.Header.Get("Location"), ck)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure || ck.Expires.IsZero() {
		t.Errorf("session cookie = %+v, want HttpOnly, SameSite=Strict, Path=/, expiring, not Secure over http", ck)
	}
	if resp, ck := login(t, f.authed.URL, "alice", "wrong"); resp.StatusCode != 200 || ck != nil {
		t.Errorf("login with a wrong password = %d, cookie %v; want the form again (200) and none", resp.StatusCode, ck)
	}
	if resp, ck := login(t, f.authed.URL, "", ""); resp.StatusCode != 200 || ck != nil {
		t.Errorf("login without credentials = %d, cookie %v; want the form again (200) and none", resp.StatusCode, ck)
	}
	form := url.Values{"user": {"alice"}, "password": {"alice-pw"}, "next": {"//evil.example/"}}
	if resp := postForm(t, f.authed.URL+"/ui/login", nil, form, nil); resp.Header.Get("Location") != "/ui/" {
		t.Errorf("login with next=//evil.example/ redirects to %q, want /ui/", resp.Header.Get("Location"))
	}
	for _, h := range []map[string]string{{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}} {
		if resp := postForm(t, f.authed.URL+"/ui/login", nil, form, h); resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
			t.Errorf("cross-site login %v = %d, want 403 and no cookie", h, resp.StatusCode)
		}
	}
	// A robot token logs in whatever the user name.
	tok, err := f.robots.Create(context.Background(), "ci", []string{"pull:team/**"}, 0)
	must(t, err)
	_, rck := login(t, f.authed.URL, "anything", tok)
	if rck == nil {
		t.Fatal("login with a robot token set no cookie")
	}
	apiCall{name: "robot session", server: "authed", path: "/api/v1/repositories/team/app/tags", cookie: rck, wantStatus: 200}.run(t, f)
	// Revoking the robot ends its session.
	must(t, f.robots.Revoke(context.Background(), "ci"))
	apiCall{name: "revoked robot session", server: "authed", path: "/api/v1/repositories/team/app/tags", cookie: rck, wantStatus: 401, wantCode: "UNAUTHORIZED"}.run(t, f)
	// Over TLS the cookie is Secure.
	tls := httptest.NewTLSServer(f.dashboard(t, WithAuth(f.svc)))
	defer tls.Close()
	c := tls.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = c.PostForm(tls.URL+"/ui/login", url.Values{"user": {"alice"}, "password": {"alice-pw"}})
	must(t, err)
	resp.Body.Close()
	if cks := resp.Cookies(); len(cks) != 1 || !cks[0].Secure {
		t.Errorf("login over TLS set %v, want one Secure cookie", cks)
	}
}

func TestLogoutEndsSession(t *testing.T) {
	f := newFixture(t)
	_, ck := login(t, f.authed.URL, "alice", "alice-pw")
	tags := apiCall{name: "session", server: "authed", path: "/api/v1/repositories/team/app/tags", cookie: ck, wantStatus: 200}
	tags.run(t, f)
	token := csrfOf(t, f.authed.URL, ck)
	for _, tc := range []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"no token", url.Values{}, nil},
		{"wrong token", url.Values{"csrf": {"x" + token}}, nil},
		{"cross-site", url.Values{"csrf": {token}}, map[string]string{"Origin": "http://evil.example"}},
	} {
		if resp := postForm(t, f.authed.URL+"/ui/logout", ck, tc.form, tc.header); resp.StatusCode != 403 {
			t.Errorf("logout, %s = %d, want 403", tc.name, resp.StatusCode)
		}
	}
	tags.run(t, f) // still logged in
	if resp := postForm(t, f.authed.URL+"/ui/logout", ck, url.Values{"csrf": {token}}, nil); resp.StatusCode != 303 {
		t.Fatalf("logout = %d, want 303", resp.StatusCode)
	}
	gone := apiCall{name: "after logout", server: "authed", path: tags.path, cookie: ck, wantStatus: 401, wantCode: "UNAUTHORIZED"}
	gone.run(t, f)
	// A restart (a new handler over the same data directory) does not
	// bring the session back.
	f.authed.Config.Handler = f.dashboard(t, WithAuth(f.svc))
	gone.name = "after logout and restart"
	gone.run(t, f)
}

func TestSessionEndsWithPasswordChange(t *testing.T) {
	f := newFixture(t)
	_, ck := login(t, f.authed.URL, "alice", "alice-pw")
	path := "/api/v1/repositories/team/app/tags"
	// Same configuration after a restart: the session holds.
	same, err := auth.New(f.cfg, f.dir, zerolog.Nop())
	must(t, err)
	f.authed.Config.Handler = f.dashboard(t, WithAuth(same))
	apiCall{name: "same password", server: "authed", path: path, cookie: ck, wantStatus: 200}.run(t, f)
	changed, err := auth.New(authConfig(t, "new-pw"), f.dir, zerolog.Nop())
	must(t, err)
	f.authed.Config.Handler = f.dashboard(t, WithAuth(changed))
	apiCall{name: "changed password", server: "authed", path: path, cookie: ck, wantStatus: 401, wantCode: "UNAUTHORIZED"}.run(t, f)
}

func TestSessionCookieChecks(t *testing.T) {
	f := newFixture(t)
	_, ck := login(t, f.authed.URL, "alice", "alice-pw")
	path := "/api/v1/repositories/team/app/tags"
	tampered := *ck
	tampered.Value = "e30" + ck.Value[3:] // another payload under the same signature
	apiCall{name: "tampered", server: "authed", path: path, cookie: &tampered, wantStatus: 401}.run(t, f)
	se, err := openSessions(t.TempDir(), time.Minute)
	must(t, err)
	other := se.issue(httptest.NewRequest("GET", "/", nil), auth.KindUser, "alice", "gen")
	apiCall{name: "other key", server: "authed", path: path, cookie: other, wantStatus: 401}.run(t, f)
	// An expired session is refused.
	short, err := openSessions(f.dir, time.Minute)
	must(t, err)
	short.lifetime = -time.Second
	_, gen, _ := f.svc.Subject(context.Background(), auth.KindUser, "alice")
	expired := short.issue(httptest.NewRequest("GET", "/", nil), auth.KindUser, "alice", gen)
	apiCall{name: "expired", server: "authed", path: path, cookie: expired, wantStatus: 401}.run(t, f)
	short.lifetime = time.Minute
	fresh := short.issue(httptest.NewRequest("GET", "/", nil), auth.KindUser, "alice", gen)
	apiCall{name: "fresh (control)", server: "authed", path: path, cookie: fresh, wantStatus: 200}.run(t, f)
}

// TestLoginIsRateLimited: the login form is under the registry's login
// limits, and says so.
func TestLoginIsRateLimited(t *testing.T) {
	f := newFixture(t)
	limited, err := auth.New(f.cfg, f.dir, zerolog.Nop(), auth.WithRateLimiter(auth.NewRateLimiter(auth.DefaultRateLimitConfig())))
	must(t, err)
	f.authed.Config.Handler = f.dashboard(t, WithAuth(limited))
	for i := range 50 {
		resp := postForm(t, f.authed.URL+"/ui/login", nil, url.Values{"user": {"alice"}, "password": {"wrong"}}, nil)
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			return
		}
		if i == 49 {
			t.Fatalf("50 wrong logins: last = %d, want a 429 by then", resp.StatusCode)
		}
	}
}
