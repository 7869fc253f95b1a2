package auth

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/rs/zerolog"
)

// TestAnonymousRightsForEveryone: what anonymous callers may do, every
// identity may do, whatever its own rules, and Grants.Allows alone says
// so; each set keeps its own denies.
func TestAnonymousRightsForEveryone(t *testing.T) {
	is := newIssuer(t)
	store := OpenTestStore(t)
	robots := NewRobots(store)
	cfg := newService(t).cfg // anonymous = ["pull:public/**"]
	cfg.Anonymous = append(cfg.Anonymous, "!pull:public/secret/**")
	cfg.Rules = append(cfg.Rules, RuleConfig{Users: []string{"alice"}, Permissions: []string{"!pull:public/**"}})
	cfg.OIDC = []OIDCConfig{{Issuer: is.srv.URL, Audience: "nora", Rules: []OIDCRule{
		{Claims: map[string]string{"repository": "my-org/*"}, Permissions: []string{"push:my-org/**"}}}}}
	s, err := New(cfg, t.TempDir(), zerolog.Nop(), WithRobots(robots))
	if err != nil {
		t.Fatal(err)
	}
	robot, err := robots.Create(t.Context(), "ci-bot", []string{"push:team-a/**"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	idToken := is.token(t, githubClaims(is.srv.URL, "my-org/app", "refs/heads/main"))
	_, refresh := getTokenOffline(t, s, "alice", "alice-pw")
	refreshed := func() *Identity {
		r := httptest.NewRequest("POST", "/auth/token", nil)
		r.PostForm = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
		r.Form = r.PostForm
		id, _, _, err := s.postGrant(r)
		if err != nil {
			t.Fatalf("refresh grant = %v", err)
		}
		return id
	}
	token := func(user, pw string) *Identity {
		code, resp := getToken(t, s, user, pw, "repository:public/app:pull,push", "repository:public/secret/x:pull")
		id, err := s.Authenticate(bearer(resp.Token))
		if code != 200 || err != nil {
			t.Fatalf("token for %s = %d, %v", user, code, err)
		}
		return id
	}
	basic := func(user, pw string) *Identity {
		id, err := s.Authenticate(basicReq(user, pw))
		if err != nil {
			t.Fatalf("Authenticate(%s) = %v", user, err)
		}
		return id
	}
	r := httptest.NewRequest("GET", "/v2/", nil)
	for name, id := range map[string]*Identity{
		"user without a rule for public/**": basic("bob", "bob-pw"),
		"user denied public/** by a rule":   basic("alice", "alice-pw"),
		"robot":                             basic("x", robot),
		"OIDC identity":                     basic("oidc", idToken),
		"refresh grant":                     refreshed(),
		"user's token":                      token("bob", "bob-pw"),
		"robot's token":                     token("x", robot),
		"OIDC identity's token":             token("oidc", idToken),
	} {
		if !id.Grants.Allows("public/app", ActionPull) || !id.Grants.Allows("public/other/app", ActionPull) {
			t.Errorf("%s: Grants.Allows(public/..., pull) = false, want true", name)
		}
		if err := s.Authorize(r, id, "public/app", ActionPull); err != nil {
			t.Errorf("%s: Authorize(public/app, pull) = %v", name, err)
		}
		if id.Grants.Allows("public/app", ActionPush) || id.Grants.Allows("public/secret/x", ActionPull) {
			t.Errorf("%s: allowed more than anonymous callers and itself may", name)
		}
	}
	// The token endpoint grants the anonymous rights too.
	code, resp := getToken(t, s, "bob", "bob-pw", "repository:public/app:pull,push")
	c, err := s.signer.verify(resp.Token, "nora", "nora")
	if want := `[{"type":"repository","name":"public/app","actions":["pull"]}]`; code != 200 || err != nil || mustJSON(t, c.Access) != want {
		t.Errorf("bob's token for public/app = %d, %v, access %s, want %s", code, err, mustJSON(t, c.Access), want)
	}
}
