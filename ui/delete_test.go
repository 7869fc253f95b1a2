package ui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

// withDeleter adds carol, who may pull and delete in team/** and is an
// admin, and serves the dashboard with that auth and f's robot tokens over
// f's store.
func withDeleter(t *testing.T, f *fixture, opts ...Option) *httptest.Server {
	t.Helper()
	cfg := f.cfg
	h, _ := bcrypt.GenerateFromPassword([]byte("carol-pw"), bcrypt.MinCost)
	cfg.Users = append(slices.Clone(cfg.Users), auth.UserConfig{Name: "carol", Password: string(h)})
	cfg.Rules = append(slices.Clone(cfg.Rules), auth.RuleConfig{Users: []string{"carol"}, Permissions: []string{"pull:team/**", "delete:team/**", "admin:*"}})
	svc, err := auth.New(cfg, f.dir, zerolog.Nop(), auth.WithRobots(f.robots))
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(f.dashboard(t, append([]Option{WithAuth(svc), WithRobots(f.robots)}, opts...)...))
	t.Cleanup(s.Close)
	return s
}

var formCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// pageCSRF returns a page's body and the CSRF token of its last form.
func pageCSRF(t *testing.T, u string, ck *http.Cookie) (string, string) {
	t.Helper()
	_, body := send(t, "GET", u, ck, nil, nil)
	m := formCSRF.FindAllStringSubmatch(body, -1)
	if len(m) == 0 {
		return body, ""
	}
	return body, m[len(m)-1][1]
}

func withHeader(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestDeleteAPI(t *testing.T) {
	f := newFixture(t)
	del := withDeleter(t, f)
	carol, alice := basic("carol", "carol-pw"), basic("alice", "alice-pw")
	json := func(h map[string]string) map[string]string { return withHeader(h, "Content-Type", "application/json") }
	_, session := login(t, del.URL, "carol", "carol-pw")
	_, csrf := pageCSRF(t, del.URL+"/ui/repositories/team/app", session)
	base := "/api/v1/repositories/team/app"
	for _, c := range []struct {
		name, method, path, body string
		header                   map[string]string
		cookie                   *http.Cookie
		wantStatus               int
		want                     string // a substring of the body
	}{
		{"anonymous", "DELETE", base + "/tags/v1", "", nil, nil, 401, `"UNAUTHORIZED"`},
		{"pull only", "DELETE", base + "/tags/v1", "", alice, nil, 403, `"DENIED"`},
		{"token without delete", "DELETE", base + "/tags/v1", "", token(t, f), nil, 403, `"DENIED"`},
		{"outside the glob", "DELETE", "/api/v1/repositories/other/tool/tags/1", "", carol, nil, 403, `"DENIED"`},
		{"unknown tag", "DELETE", base + "/tags/nope", "", carol, nil, 404, `"MANIFEST_UNKNOWN"`},
		{"bad glob", "POST", base + "/tags/delete", `{"glob":"["}`, json(carol), nil, 400, `"INVALID"`},
		{"nothing named", "POST", base + "/tags/delete", `{}`, json(carol), nil, 400, `"INVALID"`},
		{"unknown field", "POST", base + "/tags/delete", `{"globs":"*"}`, json(carol), nil, 400, `"INVALID"`},
		{"preview", "POST", base + "/tags/delete", `{"glob":"*","dryRun":true}`, json(carol), nil, 200, `"tags":["multi","v1"],"dryRun":true`},
		{"cross-site", "POST", base + "/tags/delete", `{"tags":["v1"]}`, json(withHeader(carol, "Origin", "http://evil.example")), nil, 403, `cross-site`},
		{"form post without token", "POST", base + "/tags/delete", `{"tags":["v1"]}`, withHeader(carol, "Content-Type", "text/plain"), nil, 403, `CSRF`},
		{"session without token", "POST", base + "/tags/delete", `{"tags":["multi"]}`, json(nil), session, 403, `CSRF`},
		{"session with a wrong token", "DELETE", base + "/tags/multi", "", map[string]string{"X-CSRF-Token": "x" + csrf}, session, 403, `CSRF`},
		{"session with its token", "POST", base + "/tags/delete", `{"tags":["multi"]}`, json(map[string]string{"X-CSRF-Token": csrf}), session, 200, `{"repository":"team/app","tags":["multi"]}`},
		{"gone", "GET", base + "/tags", "", carol, nil, 200, `"total":1`},
		{"one tag", "DELETE", base + "/tags/v1", "", carol, nil, 200, `"tags":["v1"]`},
		{"repository preview, auth off", "DELETE", base + "?dryRun=true", "", nil, nil, 200, `"manifests":4,"dryRun":true`},
	} {
		srv := del.URL
		if strings.HasSuffix(c.name, "auth off") {
			srv = f.open.URL
		}
		resp, body := send(t, c.method, srv+c.path, c.cookie, strings.NewReader(c.body), c.header)
		if resp.StatusCode != c.wantStatus || !strings.Contains(body, c.want) {
			t.Errorf("%s: %s %s = %d %s, want %d with %s", c.name, c.method, c.path, resp.StatusCode, body, c.wantStatus, c.want)
		}
	}
	// The repository, with auth off: gone, with its manifests.
	if resp, body := send(t, "DELETE", f.open.URL+base, nil, nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `"manifests":4`) {
		t.Fatalf("DELETE %s = %d %s", base, resp.StatusCode, body)
	}
	if resp, _ := send(t, "GET", f.open.URL+base+"/tags", nil, nil, nil); resp.StatusCode != 404 {
		t.Errorf("tags after deleting the repository = %d, want 404", resp.StatusCode)
	}
	if _, err := f.store.GetManifest(t.Context(), "team/app", f.sig.String()); err == nil {
		t.Error("the signature is still there")
	}
}

func TestDeletePages(t *testing.T) {
	f := newFixture(t)
	del := withDeleter(t, f)
	repo := "/ui/repositories/team/app"
	form := func(base string, ck *http.Cookie, v url.Values, h map[string]string) (*http.Response, string) {
		return send(t, "POST", base+repo+"/delete", ck, strings.NewReader(v.Encode()), withHeader(h, "Content-Type", "application/x-www-form-urlencoded"))
	}

	// Deletes are events, as replication sees them.
	if _, err := f.store.RecordEvents([]string{"test"}); err != nil {
		t.Fatal(err)
	}
	// Auth off: preview by glob, confirm, and the tag is gone.
	body, tok := pageCSRF(t, f.open.URL+repo, nil)
	if tok == "" || !strings.Contains(body, "Delete selected") || !strings.Contains(body, "Delete repository") {
		t.Fatalf("repository page, auth off: no delete controls\n%s", body)
	}
	if resp, _ := form(f.open.URL, nil, url.Values{"glob": {"v*"}}, nil); resp.StatusCode != 403 {
		t.Errorf("delete without a CSRF token = %d, want 403", resp.StatusCode)
	}
	if resp, _ := form(f.open.URL, nil, url.Values{"glob": {"v*"}, "csrf": {tok}}, map[string]string{"Origin": "http://evil.example"}); resp.StatusCode != 403 {
		t.Errorf("cross-site delete = %d, want 403", resp.StatusCode)
	}
	resp, body := form(f.open.URL, nil, url.Values{"glob": {"v*"}, "csrf": {tok}}, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<code>v1</code>") || strings.Contains(body, "<code>multi</code>") || !strings.Contains(body, `name="confirm"`) {
		t.Fatalf("preview = %d\n%s", resp.StatusCode, body)
	}
	if tags, _, _ := f.store.Tags(t.Context(), "team/app", "", -1); len(tags) != 2 {
		t.Errorf("a preview deleted: tags %v", tags)
	}
	resp, _ = form(f.open.URL, nil, url.Values{"tag": {"v1"}, "confirm": {"1"}, "csrf": {tok}}, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != repo+"?deleted=1" {
		t.Fatalf("confirm = %d to %q", resp.StatusCode, loc)
	}
	if _, body := send(t, "GET", f.open.URL+repo+"?deleted=1", nil, nil, nil); !strings.Contains(body, "Deleted 1 tag.") || strings.Contains(body, ">v1<") {
		t.Errorf("after the delete:\n%s", body)
	}
	if ev, err := f.store.Events(t.Context(), "test", 10); err != nil || len(ev) != 1 || ev[0].Kind != storage.EventDeleteTag || ev[0].Tags[0] != "v1" {
		t.Errorf("events after the delete: %+v, %v", ev, err)
	}

	// Auth on: alice may pull, not delete: no buttons, and a post is refused.
	_, alice := login(t, del.URL, "alice", "alice-pw")
	body, tok = pageCSRF(t, del.URL+repo, alice)
	if strings.Contains(body, "Delete") {
		t.Errorf("alice sees delete controls\n%s", body)
	}
	if resp, _ := form(del.URL, alice, url.Values{"one": {"multi"}, "csrf": {tok}}, nil); resp.StatusCode != 403 {
		t.Errorf("alice's delete = %d, want 403", resp.StatusCode)
	}
	// carol deletes the repository.
	_, carol := login(t, del.URL, "carol", "carol-pw")
	body, tok = pageCSRF(t, del.URL+repo, carol)
	if !strings.Contains(body, "Delete selected") {
		t.Fatalf("carol sees no delete controls\n%s", body)
	}
	resp, body = form(del.URL, carol, url.Values{"repository": {"1"}, "csrf": {tok}}, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "1 tag and 4 manifests") {
		t.Fatalf("repository preview = %d\n%s", resp.StatusCode, body)
	}
	resp, _ = form(del.URL, carol, url.Values{"repository": {"1"}, "confirm": {"1"}, "csrf": {tok}}, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/ui/repositories?deleted=team%2Fapp" {
		t.Fatalf("repository confirm = %d to %q", resp.StatusCode, loc)
	}
	if _, body := send(t, "GET", del.URL+"/ui/repositories?deleted=team%2Fapp", carol, nil, nil); !strings.Contains(body, "Deleted the repository team/app.") {
		t.Errorf("after deleting the repository:\n%s", body)
	}
	if _, err := f.store.Repository(t.Context(), "team/app"); err == nil {
		t.Error("team/app is still there")
	}
}

// TestCSRFWithoutSession: a form posted with Basic credentials (which a
// browser may have cached and would send to another site's form too)
// needs the token of that identity, not the anonymous callers' one.
func TestCSRFWithoutSession(t *testing.T) {
	f := newFixture(t)
	h, err := New(DefaultConfig(), f.store, f.dir)
	if err != nil {
		t.Fatal(err)
	}
	anon := h.csrfToken(caller{id: &auth.Identity{Kind: auth.KindAnonymous}})
	carolID := &auth.Identity{Kind: auth.KindUser, Name: "carol"}
	if mine := h.csrfToken(caller{id: carolID}); mine == anon || mine == "" {
		t.Fatalf("carol's token %q, anonymous %q", mine, anon)
	}
	del := withDeleter(t, f)
	form := url.Values{"glob": {"v*"}, "csrf": {anon}}
	resp, _ := send(t, "POST", del.URL+"/ui/repositories/team/app/delete", nil, strings.NewReader(form.Encode()),
		withHeader(basic("carol", "carol-pw"), "Content-Type", "application/x-www-form-urlencoded"))
	if resp.StatusCode != 403 {
		t.Errorf("carol's form with the anonymous token = %d, want 403", resp.StatusCode)
	}
}
