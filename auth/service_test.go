package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

func hash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func newService(t testing.TB) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Realm = "https://registry.example"
	cfg.Users = []UserConfig{
		{Name: "alice", Password: hash(t, "alice-pw"), Groups: []string{"team"}},
		{Name: "bob", Password: hash(t, "bob-pw")},
	}
	cfg.Anonymous = []string{"pull:public/**"}
	cfg.Rules = []RuleConfig{
		{Groups: []string{"team"}, Permissions: []string{"*:team/**", "!delete:team/prod/**"}},
		{Users: []string{"bob"}, Permissions: []string{"pull:team/app"}},
	}
	s, err := New(cfg, t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// getToken asks the token endpoint with Basic credentials for scopes.
func getToken(t testing.TB, s *Service, user, pw string, scopes ...string) (int, tokenResponse) {
	t.Helper()
	q := url.Values{"service": {"nora"}, "scope": scopes, "account": {"root"}}
	r := httptest.NewRequest("GET", "/auth/token?"+q.Encode(), nil)
	if user != "" {
		r.SetBasicAuth(user, pw)
	}
	w := httptest.NewRecorder()
	s.TokenHandler().ServeHTTP(w, r)
	var resp tokenResponse
	json.Unmarshal(w.Body.Bytes(), &resp)
	return w.Code, resp
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func TestTokenGrantsTheIntersection(t *testing.T) {
	s := newService(t)
	code, resp := getToken(t, s, "alice", "alice-pw", "repository:team/app:pull,push,delete", "repository:other/app:pull", "repository:team/prod/x:delete,pull")
	if code != 200 || resp.Token == "" || resp.Token != resp.AccessToken || resp.ExpiresIn != 300 || resp.IssuedAt == "" {
		t.Fatalf("token endpoint = %d %+v", code, resp)
	}
	id, err := s.Authenticate(bearer(resp.Token))
	if err != nil {
		t.Fatalf("Authenticate(token) = %v", err)
	}
	if id.Name != "alice" || id.Kind != KindToken {
		t.Errorf("identity = %+v, want alice by token (not the forged account=root)", id)
	}
	for _, c := range []struct {
		repo   string
		action Action
		want   bool
	}{
		{"team/app", ActionPull, true}, {"team/app", ActionPush, true}, {"team/app", ActionDelete, true},
		{"other/app", ActionPull, false}, {"team/prod/x", ActionDelete, false}, {"team/prod/x", ActionPull, true},
		{"team/other", ActionPull, false}, // not asked for
	} {
		if got := id.Grants.Allows(c.repo, c.action); got != c.want {
			t.Errorf("token allows %s on %s = %v, want %v", c.action, c.repo, got, c.want)
		}
	}
	// Anonymous: only what anonymous may do.
	code, resp = getToken(t, s, "", "", "repository:public/x:pull,push", "repository:team/app:pull")
	id, _ = s.Authenticate(bearer(resp.Token))
	if code != 200 || !id.Grants.Allows("public/x", ActionPull) || id.Grants.Allows("public/x", ActionPush) || id.Grants.Allows("team/app", ActionPull) {
		t.Errorf("anonymous token = %d, grants %+v", code, id.Grants)
	}
	// Wrong password and unknown user: 401, nothing issued.
	for _, cred := range [][2]string{{"alice", "nope"}, {"mallory", "alice-pw"}} {
		if code, resp := getToken(t, s, cred[0], cred[1], "repository:team/app:pull"); code != 401 || resp.Token != "" {
			t.Errorf("token for %s/%s = %d %q, want 401", cred[0], cred[1], code, resp.Token)
		}
	}
	// Scopes whose repository names carry host:port parse whole.
	if typ, name, actions, ok := parseScope("repository:localhost:5000/team/app:pull,push"); !ok || typ != "repository" || name != "localhost:5000/team/app" || strings.Join(actions, ",") != "pull,push" {
		t.Errorf("parseScope = %q %q %q %v", typ, name, actions, ok)
	}
}

func TestTokenAttacks(t *testing.T) {
	s := newService(t)
	_, good := getToken(t, s, "alice", "alice-pw", "repository:team/app:pull")
	now := time.Now()
	base := func() claims {
		return claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "nora", Subject: "alice", Audience: jwt.ClaimStrings{"nora"},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))},
			Access: []access{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}}
	}
	signWith := func(c claims, edit func(*claims)) string {
		edit(&c)
		tok, err := s.signer.sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	parts := strings.Split(good.Token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"pull"`, `"push"`, 1))) + "." + parts[2]
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, base()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	pub, _ := x509.MarshalPKIXPublicKey(&s.signer.key.PublicKey)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, base())
	hs.Header["kid"] = s.signer.kid
	hsTok, _ := hs.SignedString(pub)
	foreignKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreign := &signer{key: foreignKey, kid: s.signer.kid}
	foreignTok, _ := foreign.sign(base())
	unknownKid := &signer{key: s.signer.key, kid: "other"}
	unknownKidTok, _ := unknownKid.sign(base())
	_, refresh := getTokenOffline(t, s, "alice", "alice-pw")

	for name, tok := range map[string]string{
		"alg none":                   none,
		"HS256 with the public key":  hsTok,
		"unknown kid":                unknownKidTok,
		"foreign key with known kid": foreignTok,
		"expired":                    signWith(base(), func(c *claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) }),
		"no expiry":                  signWith(base(), func(c *claims) { c.ExpiresAt = nil }),
		"not yet valid":              signWith(base(), func(c *claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) }),
		"wrong audience":             signWith(base(), func(c *claims) { c.Audience = jwt.ClaimStrings{"other"} }),
		"wrong issuer":               signWith(base(), func(c *claims) { c.Issuer = "other" }),
		"tampered payload":           tampered,
		"refresh token as access":    refresh,
		"garbage":                    "a.b.c",
	} {
		t.Run(name, func(t *testing.T) {
			if id, err := s.Authenticate(bearer(tok)); err == nil {
				t.Fatalf("Authenticate(%s) = %+v, want rejection", name, id)
			} else if e, ok := AsError(err); !ok || e.Status != 401 || !strings.HasPrefix(e.Challenge, `Bearer realm="https://registry.example/auth/token"`) {
				t.Fatalf("Authenticate(%s) = %v, want 401 with a challenge", name, err)
			}
		})
	}

	// A valid pull token: used on another repository, or to push.
	id, err := s.Authenticate(bearer(good.Token))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v2/", nil)
	if err := s.Authorize(r, id, "team/other", ActionPull); statusOf(err) != 401 {
		t.Errorf("pull token on another repository = %v, want 401 (alice may get a token for it)", err)
	}
	if err := s.Authorize(r, id, "team/app", ActionPush); statusOf(err) != 401 {
		t.Errorf("pull token used to push = %v, want 401 with a push challenge", err)
	}
	if err := s.Authorize(r, id, "secret/app", ActionPull); statusOf(err) != 403 {
		t.Errorf("token on a repository alice may never read = %v, want 403", err)
	}
	if err := s.Authorize(r, id, "team/app", ActionPull); err != nil {
		t.Errorf("pull token pulling = %v", err)
	}
}

func getTokenOffline(t *testing.T, s *Service, user, pw string) (tokenResponse, string) {
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}, "access_type": {"offline"}, "scope": {"repository:team/app:pull"}, "service": {"nora"}}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/auth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.TokenHandler().ServeHTTP(w, r)
	var resp tokenResponse
	json.Unmarshal(w.Body.Bytes(), &resp)
	if w.Code != 200 || resp.RefreshToken == "" {
		t.Fatalf("password grant = %d %s", w.Code, w.Body)
	}
	return resp, resp.RefreshToken
}

func TestRefreshGrant(t *testing.T) {
	s := newService(t)
	_, refresh := getTokenOffline(t, s, "alice", "alice-pw")
	post := func(form url.Values) (int, tokenResponse) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/auth/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		s.TokenHandler().ServeHTTP(w, r)
		var resp tokenResponse
		json.Unmarshal(w.Body.Bytes(), &resp)
		return w.Code, resp
	}
	// The username sent with a refresh token never changes whose it is.
	code, resp := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "username": {"bob"}, "scope": {"repository:team/app:push"}})
	id, err := s.Authenticate(bearer(resp.Token))
	if code != 200 || err != nil || id.Name != "alice" || !id.Grants.Allows("team/app", ActionPush) {
		t.Fatalf("refresh grant = %d %+v %v", code, id, err)
	}
	_, access := getToken(t, s, "alice", "alice-pw", "repository:team/app:pull")
	for name, form := range map[string]url.Values{
		"access token as refresh": {"grant_type": {"refresh_token"}, "refresh_token": {access.Token}},
		"garbage refresh":         {"grant_type": {"refresh_token"}, "refresh_token": {"x"}},
		"wrong password":          {"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}},
		"unknown grant":           {"grant_type": {"client_credentials"}},
	} {
		if code, resp := post(form); code < 400 || resp.Token != "" {
			t.Errorf("%s = %d %q, want an error", name, code, resp.Token)
		}
	}
}

func TestBasicAndAnonymous(t *testing.T) {
	s := newService(t)
	r := httptest.NewRequest("GET", "/v2/", nil)
	anon, err := s.Authenticate(r)
	if err != nil || anon.Kind != KindAnonymous {
		t.Fatalf("Authenticate(no credentials) = %+v, %v", anon, err)
	}
	if err := s.Authorize(r, anon, "public/x", ActionPull); err != nil {
		t.Errorf("anonymous pull of public/x = %v", err)
	}
	if err := s.Authorize(r, anon, "team/app", ActionPull); statusOf(err) != 401 {
		t.Errorf("anonymous pull of team/app = %v, want 401", err)
	} else if e, _ := AsError(err); !strings.Contains(e.Challenge, `scope="repository:team/app:pull"`) {
		t.Errorf("challenge = %q, want the scope", e.Challenge)
	} else if want := "authentication required for pull access to team/app"; e.Message != want {
		// As for a denial: not the UNAUTHORIZED code's own text, which
		// docker retries a push after.
		t.Errorf("anonymous pull of team/app: message %q, want %q", e.Message, want)
	}
	r.SetBasicAuth("bob", "bob-pw")
	bob, err := s.Authenticate(r)
	if err != nil || bob.Kind != KindUser {
		t.Fatalf("Authenticate(bob) = %+v, %v", bob, err)
	}
	if err := s.Authorize(r, bob, "team/app", ActionPull); err != nil {
		t.Errorf("bob pull team/app = %v", err)
	}
	if err := s.Authorize(r, bob, "team/app", ActionPush); statusOf(err) != 403 {
		t.Errorf("bob push team/app = %v, want 403", err)
	} else if e, _ := AsError(err); e.Message != "no push access to team/app" {
		// docker takes a DENIED whose message is the code's own text for
		// a transient error, and retries the push for a minute.
		t.Errorf("bob push team/app: message %q, want %q", e.Message, "no push access to team/app")
	}
	r.SetBasicAuth("bob", "wrong")
	if _, err := s.Authenticate(r); statusOf(err) != 401 {
		t.Errorf("Authenticate(bob, wrong) = %v, want 401", err)
	}
}

func statusOf(err error) int {
	if e, ok := AsError(err); ok {
		return e.Status
	}
	return 0
}

func BenchmarkCachedTokenAndRBAC(b *testing.B) {
	s := newService(b)
	_, resp := getToken(b, s, "alice", "alice-pw", "repository:team/app:pull,push")
	r := bearer(resp.Token)
	for b.Loop() {
		id, err := s.Authenticate(r)
		if err != nil || s.Authorize(r, id, "team/app", ActionPush) != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueToken(b *testing.B) {
	s := newService(b)
	id := &Identity{Name: "alice", Kind: KindUser, Grants: s.users["alice"].perms}
	for b.Loop() {
		if _, err := s.issue(id, []string{"repository:team/app:pull,push"}, false); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTokenGrantsOnlyRealActionsAndNames: a scope's unknown actions and
// invalid repository names are granted nothing, whatever the rules match.
func TestTokenGrantsOnlyRealActionsAndNames(t *testing.T) {
	s := newService(t)
	code, resp := getToken(t, s, "alice", "alice-pw",
		"repository:team/app:pull,admin,**,push", "repository:team/../secret/app:pull", "repository:team/Upper:pull",
		"repository:team/prod:*", "repository:team/"+strings.Repeat("a", 260)+":pull")
	if code != 200 {
		t.Fatalf("token endpoint = %d", code)
	}
	c, err := s.signer.verify(resp.Token, "nora", "nora")
	if err != nil {
		t.Fatal(err)
	}
	want := []access{
		{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "team/prod", Actions: []string{"pull", "push"}}, // team/prod/** denies delete on team/prod too
	}
	if got, _ := json.Marshal(c.Access); string(got) != mustJSON(t, want) {
		t.Errorf("access claim = %s, want %s", got, mustJSON(t, want))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
