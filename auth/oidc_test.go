package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

func newOIDCService(t *testing.T, is *issuer) *Service {
	cfg := DefaultConfig()
	cfg.OIDC = []OIDCConfig{{Issuer: is.srv.URL, Audience: "nora", MaxTokenLifetime: "1h", Rules: []OIDCRule{
		{Claims: map[string]string{"repository": "my-org/*", "ref": "refs/heads/main"}, Permissions: []string{"push:my-org/**", "pull:my-org/**"}},
		{Claims: map[string]string{"project_path": "group/*", "ref_protected": "true"}, Permissions: []string{"push:group/**"}},
	}}}
	s, err := New(cfg, t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOIDCExchange(t *testing.T) {
	is := newIssuer(t)
	s := newOIDCService(t, is)
	clk := &clock{t: time.Now()}
	s.oidc.now = clk.now
	gh := is.token(t, githubClaims(is.srv.URL, "my-org/app", "refs/heads/main"))

	// The ID token as a password (docker login -u oidc -p $TOKEN).
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth("oidc", gh)
	id, err := s.Authenticate(r)
	if err != nil || id.Kind != KindOIDC || !id.Grants.Allows("my-org/app", ActionPush) || id.Grants.Allows("other/app", ActionPull) {
		t.Fatalf("Authenticate(ID token as password) = %+v, %v", id, err)
	}
	if !strings.HasPrefix(id.Name, "oidc:127.0.0.1:") || !strings.HasSuffix(id.Name, ":repo:my-org/app:ref:refs/heads/main") {
		t.Errorf("identity name = %q", id.Name)
	}
	// At the token endpoint, with Basic.
	code, resp := getToken(t, s, "oidc", gh, "repository:my-org/app:push,pull")
	if tid, err := s.Authenticate(bearer(resp.Token)); code != 200 || err != nil || !tid.Grants.Allows("my-org/app", ActionPush) {
		t.Fatalf("token endpoint with an ID token = %d, %+v, %v", code, tid, err)
	}
	post := func(h http.Handler, form url.Values, header string) (int, tokenResponse) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if header != "" {
			r.Header.Set("Authorization", "Bearer "+header)
		}
		h.ServeHTTP(w, r)
		var resp tokenResponse
		json.Unmarshal(w.Body.Bytes(), &resp)
		return w.Code, resp
	}
	// RFC 8693 token exchange.
	code, resp = post(s.TokenHandler(), url.Values{"grant_type": {grantTokenExchange}, "subject_token": {gh},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "scope": {"repository:my-org/app:push"}}, "")
	if tid, err := s.Authenticate(bearer(resp.Token)); code != 200 || err != nil || !tid.Grants.Allows("my-org/app", ActionPush) {
		t.Fatalf("token exchange = %d, %v", code, err)
	}
	// POST /auth/oidc/token, form field and bearer header.
	for _, c := range []struct {
		form   url.Values
		header string
	}{{url.Values{"id_token": {gh}, "scope": {"repository:my-org/app:pull"}}, ""}, {url.Values{"scope": {"repository:my-org/app:pull"}}, gh}} {
		code, resp := post(s.OIDCHandler(), c.form, c.header)
		if tid, err := s.Authenticate(bearer(resp.Token)); code != 200 || err != nil || !tid.Grants.Allows("my-org/app", ActionPull) {
			t.Fatalf("/auth/oidc/token = %d, %v", code, err)
		}
	}
	// GitLab-shaped token on a protected branch.
	gl := is.token(t, gitlabClaims(is.srv.URL, "group/project", "main", true))
	code, resp = post(s.OIDCHandler(), url.Values{"id_token": {gl}, "scope": {"repository:group/project:push"}}, "")
	if tid, err := s.Authenticate(bearer(resp.Token)); code != 200 || err != nil || !tid.Grants.Allows("group/project", ActionPush) {
		t.Fatalf("GitLab token = %d, %v", code, err)
	}
	// Key rotation: a token signed with the issuer's new key verifies.
	is.rotate(t, "k2", "ES256")
	clk.advance(keyRefetch) // keys are fetched again at most this often
	rotated := is.token(t, githubClaims(is.srv.URL, "my-org/other", "refs/heads/main"))
	if code, _ := post(s.OIDCHandler(), url.Values{"id_token": {rotated}}, ""); code != 200 {
		t.Fatalf("token after key rotation = %d, want 200", code)
	}
}

// TestOIDCAttacks: each token is rejected, by OIDC.Verify and as a
// password.
func TestOIDCAttacks(t *testing.T) {
	is := newIssuer(t)
	s := newOIDCService(t, is)
	clk := &clock{t: time.Now()}
	s.oidc.now = clk.now
	foreign := newIssuer(t)
	now := time.Now()
	gh := func() jwt.MapClaims { return githubClaims(is.srv.URL, "my-org/app", "refs/heads/main") }
	valid := is.token(t, gh())
	parts := strings.Split(valid, ".")

	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, gh()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	// HS256 keyed with the issuer's public key, a classic confusion.
	is.mu.Lock()
	pub := is.keys[is.kid].Public().(*rsa.PublicKey)
	is.mu.Unlock()
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, gh())
	hs.Header["kid"] = is.kid
	hmac, _ := hs.SignedString([]byte(base64.StdEncoding.EncodeToString(pub.N.Bytes())))
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tampered := gh()
	tampered["repository"] = "my-org/other"
	body, _ := json.Marshal(tampered)

	for name, tok := range map[string]string{
		"untrusted issuer":           foreign.token(t, githubClaims(foreign.srv.URL, "my-org/app", "refs/heads/main")),
		"foreign key, known kid":     sign(t, foreign.keys[foreign.kid], is.kid, gh()),
		"foreign EC key, kid":        sign(t, ecKey, is.kid, gh()),
		"unknown kid":                sign(t, ecKey, "k9", gh()),
		"alg none":                   none,
		"HS256 with the public key":  hmac,
		"tampered payload":           parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2],
		"no signature":               parts[0] + "." + parts[1] + ".",
		"wrong audience":             is.token(t, edit(gh(), func(c jwt.MapClaims) { c["aud"] = "other" })),
		"audience list without ours": is.token(t, edit(gh(), func(c jwt.MapClaims) { c["aud"] = []string{"sts.amazonaws.com", "nora-x"} })),
		"issuer with a path":         is.token(t, edit(gh(), func(c jwt.MapClaims) { c["iss"] = is.srv.URL + "/evil" })),
		"expired":                    is.token(t, edit(gh(), func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"no exp":                     is.token(t, edit(gh(), func(c jwt.MapClaims) { delete(c, "exp") })),
		"nbf in the future":          is.token(t, edit(gh(), func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })),
		"lifetime too long":          is.token(t, edit(gh(), func(c jwt.MapClaims) { c["exp"] = now.Add(48 * time.Hour).Unix() })),
		"issued in the future": is.token(t, edit(gh(), func(c jwt.MapClaims) {
			c["iat"] = now.Add(47 * time.Hour).Unix()
			c["exp"] = now.Add(48 * time.Hour).Unix()
		})),
		"no iat":                 is.token(t, edit(gh(), func(c jwt.MapClaims) { delete(c, "iat") })),
		"look-alike owner":       is.token(t, githubClaims(is.srv.URL, "my-org-evil/app", "refs/heads/main")),
		"owner prefix":           is.token(t, githubClaims(is.srv.URL, "my-orgx/app", "refs/heads/main")),
		"star crossing a slash":  is.token(t, githubClaims(is.srv.URL, "my-org/app/x", "refs/heads/main")),
		"other branch":           is.token(t, githubClaims(is.srv.URL, "my-org/app", "refs/heads/main-evil")),
		"missing claim":          is.token(t, edit(gh(), func(c jwt.MapClaims) { delete(c, "ref") })),
		"non-string claim":       is.token(t, edit(gh(), func(c jwt.MapClaims) { c["ref"] = []string{"refs/heads/main"} })),
		"unprotected gitlab ref": is.token(t, gitlabClaims(is.srv.URL, "group/project", "feature", false)),
		"gitlab subgroup":        is.token(t, gitlabClaims(is.srv.URL, "group/sub/project", "main", true)),
		"not a JWT":              "eyJhbGciOiJSUzI1NiJ9.garbage.garbage",
	} {
		t.Run(name, func(t *testing.T) {
			if id, _, err := s.oidc.Verify(t.Context(), tok); err == nil {
				t.Fatalf("Verify(%s) = %+v, want an error", name, id)
			} else if strings.Contains(err.Error(), tok) || (len(tok) > 40 && strings.Contains(err.Error(), tok[len(tok)-20:])) {
				t.Errorf("Verify(%s) error quotes the token: %v", name, err)
			}
			r := httptest.NewRequest("GET", "/v2/", nil)
			r.SetBasicAuth("oidc", tok)
			if id, err := s.Authenticate(r); err == nil {
				t.Fatalf("Authenticate(%s) = %+v, want rejection", name, id)
			}
		})
	}
	// Rotation: a token under the new kid makes go-oidc fetch the JWKS
	// again; the old key is gone from it, so tokens it signed no longer
	// verify. (go-oidc keeps using cached keys until a token it can't
	// verify with them makes it refetch.)
	is.rotate(t, "k2", "RS256")
	clk.advance(keyRefetch)
	if _, _, err := s.oidc.Verify(t.Context(), is.token(t, gh())); err != nil {
		t.Errorf("Verify(token signed with the new key) = %v", err)
	}
	if _, _, err := s.oidc.Verify(t.Context(), valid); err == nil {
		t.Error("Verify(token signed with a rotated-out key) succeeded")
	}
}

// TestOIDCClaimRules checks which rules a token's claims match and the
// permissions they grant: all claims of a rule must match, every matching
// rule adds its permissions, and denies still win.
func TestOIDCClaimRules(t *testing.T) {
	is := newIssuer(t)
	is.rotate(t, "ec1", "ES256")
	o, err := NewOIDC([]OIDCConfig{{Name: "ci", Issuer: is.srv.URL, Audience: "nora", Rules: []OIDCRule{
		{Claims: map[string]string{"repository_owner": "my-org"}, Permissions: []string{"pull:my-org/**"}},
		{Claims: map[string]string{"repository": "my-org/*", "ref": "refs/heads/main", "event_name": "push"}, Permissions: []string{"push:my-org/**", "!push:my-org/prod/**"}},
		{Claims: map[string]string{"job_workflow_ref": "my-org/*/.github/workflows/release.yml@refs/tags/v*"}, Permissions: []string{"push:my-org/prod/**"}},
		{Claims: map[string]string{"repository": "my-org/*", "environment": "production"}, Permissions: []string{"delete:my-org/*/dev-*"}},
		{Claims: map[string]string{"sub": "repo:my-org/*:ref:refs/heads/*"}, Permissions: []string{"pull:shared/*"}},
		{Claims: map[string]string{"project_path": "group/**", "ref_protected": "true", "pipeline_source": "{push,web}"}, Permissions: []string{"push:group/**"}},
		{Claims: map[string]string{"namespace_path": "group", "ref_type": "branch"}, Permissions: []string{"pull:group/**"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	type check struct {
		repo   string
		action Action
		want   bool
	}
	gh := func(repo, ref string, f func(jwt.MapClaims)) jwt.MapClaims {
		c := githubClaims(is.srv.URL, repo, ref)
		if f != nil {
			f(c)
		}
		return c
	}
	for _, c := range []struct {
		name   string
		claims jwt.MapClaims
		checks []check
	}{
		{"main branch push", gh("my-org/app", "refs/heads/main", nil), []check{
			{"my-org/app", ActionPush, true}, {"my-org/x/y", ActionPull, true}, {"my-org/prod/app", ActionPush, false},
			{"my-org/app/dev-1", ActionDelete, true}, {"my-org/app", ActionDelete, false}, {"shared/base", ActionPull, true},
			{"other/app", ActionPull, false}, {"group/x", ActionPull, false}}},
		{"feature branch: the owner's pull only", gh("my-org/app", "refs/heads/feature", func(c jwt.MapClaims) { c["environment"] = "dev" }), []check{
			{"my-org/app", ActionPull, true}, {"my-org/app", ActionPush, false}, {"my-org/app/dev-1", ActionDelete, false}, {"shared/base", ActionPull, true}}},
		{"pull request event", gh("my-org/app", "refs/heads/main", func(c jwt.MapClaims) { c["event_name"] = "pull_request" }), []check{
			{"my-org/app", ActionPush, false}, {"my-org/app", ActionPull, true}}},
		{"release tag: prod push, no branch rule", gh("my-org/app", "refs/tags/v1.2.0", nil), []check{
			{"my-org/prod/app", ActionPush, true}, {"shared/base", ActionPull, false}}},
		{"release tag and main: the deny of the main rule wins", gh("my-org/app", "refs/heads/main", func(c jwt.MapClaims) {
			c["job_workflow_ref"] = "my-org/app/.github/workflows/release.yml@refs/tags/v1"
		}), []check{{"my-org/prod/app", ActionPush, false}, {"my-org/app", ActionPush, true}}},
		{"reusable workflow from another repo", gh("my-org/app", "refs/tags/v1", func(c jwt.MapClaims) {
			c["job_workflow_ref"] = "evil/app/.github/workflows/release.yml@refs/tags/v1"
		}), []check{{"my-org/prod/app", ActionPush, false}}},
		{"GitLab protected branch in a subgroup", gitlabClaims(is.srv.URL, "group/sub/project", "main", true), []check{
			{"group/sub/project", ActionPush, true}, {"group/other", ActionPush, true}, {"my-org/app", ActionPull, false}}},
		{"GitLab unprotected branch", gitlabClaims(is.srv.URL, "group/project", "feature", false), []check{
			{"group/project", ActionPush, false}, {"group/project", ActionPull, true}}},
		{"GitLab scheduled pipeline", edit(gitlabClaims(is.srv.URL, "group/project", "main", true), func(c jwt.MapClaims) { c["pipeline_source"] = "schedule" }), []check{
			{"group/project", ActionPush, false}, {"group/project", ActionPull, true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, exp, err := o.Verify(t.Context(), is.token(t, c.claims))
			if err != nil {
				t.Fatalf("Verify = %v", err)
			}
			host := strings.TrimPrefix(is.srv.URL, "http://")
			if id.Kind != KindOIDC || id.Name != "oidc:"+host+":"+c.claims["sub"].(string) || exp.Unix() != c.claims["exp"].(int64) {
				t.Errorf("Verify = %+v, expiry %v", id, exp)
			}
			for _, k := range c.checks {
				if got := id.Grants.Allows(k.repo, k.action); got != k.want {
					t.Errorf("Allows(%s, %s) = %v, want %v", k.repo, k.action, got, k.want)
				}
			}
		})
	}
}

// TestOIDCDiscovery: an issuer down at start does not stop NewOIDC; logins
// fail (without asking the issuer again within the retry interval) until
// it is back.
func TestOIDCDiscovery(t *testing.T) {
	is := newIssuer(t)
	is.down.Store(true)
	o, err := NewOIDC([]OIDCConfig{{Name: "github", Issuer: is.srv.URL, Audience: "nora", Rules: []OIDCRule{
		{Claims: map[string]string{"repository": "my-org/*"}, Permissions: []string{"pull:**"}},
	}}})
	if err != nil {
		t.Fatalf("NewOIDC(issuer down) = %v", err)
	}
	clk := &clock{t: time.Now()}
	o.now = clk.now
	tok := is.token(t, githubClaims(is.srv.URL, "my-org/app", "refs/heads/main"))
	if _, _, err := o.Verify(t.Context(), tok); err == nil || !strings.Contains(err.Error(), "github: OIDC discovery failed") {
		t.Fatalf("Verify(issuer down) = %v, want a discovery error naming the entry", err)
	}
	is.down.Store(false)
	if _, _, err := o.Verify(t.Context(), tok); err == nil || is.discovered.Load() != 0 {
		t.Fatalf("Verify(within the retry interval) = %v after %d discoveries, want the remembered error", err, is.discovered.Load())
	}
	clk.advance(discoveryRetry)
	if _, _, err := o.Verify(t.Context(), tok); err != nil {
		t.Fatalf("Verify(issuer back) = %v", err)
	}
	// Once discovered, the verifier is kept: the issuer going down
	// again does not matter for keys already fetched.
	is.down.Store(true)
	if _, _, err := o.Verify(t.Context(), is.token(t, githubClaims(is.srv.URL, "my-org/b", "refs/heads/main"))); err != nil || is.discovered.Load() != 1 {
		t.Errorf("Verify(issuer down after discovery) = %v, %d discoveries, want ok and 1", err, is.discovered.Load())
	}
}

// TestOIDCJWKSURL: with jwks_url set, keys come from there and discovery
// is never asked.
func TestOIDCJWKSURL(t *testing.T) {
	is := newIssuer(t)
	is.rotate(t, "ec", "ES256")
	o, err := NewOIDC([]OIDCConfig{{Issuer: is.srv.URL, Audience: "nora", JWKSURL: is.srv.URL + "/jwks", MaxTokenLifetime: "10m", Rules: []OIDCRule{
		{Claims: map[string]string{"project_path": "group/*"}, Permissions: []string{"push:group/**"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := o.Verify(t.Context(), is.token(t, gitlabClaims(is.srv.URL, "group/app", "main", true)))
	if err != nil || !id.Grants.Allows("group/app", ActionPush) || is.discovered.Load() != 0 {
		t.Fatalf("Verify with jwks_url = %+v, %v after %d discoveries", id, err, is.discovered.Load())
	}
	long := edit(gitlabClaims(is.srv.URL, "group/app", "main", true), func(c jwt.MapClaims) { c["exp"] = time.Now().Add(20 * time.Minute).Unix() })
	if _, _, err := o.Verify(t.Context(), is.token(t, long)); err == nil || !strings.Contains(err.Error(), "max_token_lifetime") {
		t.Errorf("Verify(20m token, 10m max) = %v, want a lifetime error", err)
	}
}

func TestOIDCConfigValidate(t *testing.T) {
	good := func() OIDCConfig {
		return OIDCConfig{Issuer: "https://token.actions.githubusercontent.com", Audience: "nora", Rules: []OIDCRule{
			{Claims: map[string]string{"repository": "my-org/*"}, Permissions: []string{"push:my-org/**"}}}}
	}
	for _, c := range []struct {
		key  string
		edit func(*OIDCConfig)
	}{
		{"auth.oidc[0].issuer", func(c *OIDCConfig) { c.Issuer = "token.actions.githubusercontent.com" }},
		{"auth.oidc[0].issuer", func(c *OIDCConfig) { c.Issuer = "ftp://x" }},
		{"auth.oidc[0].audience", func(c *OIDCConfig) { c.Audience = "" }},
		{"auth.oidc[0].jwks_url", func(c *OIDCConfig) { c.JWKSURL = "/keys" }},
		{"auth.oidc[0].max_token_lifetime", func(c *OIDCConfig) { c.MaxTokenLifetime = "1 hour" }},
		{"auth.oidc[0].rules", func(c *OIDCConfig) { c.Rules = nil }},
		{"auth.oidc[0].rules[0].claims", func(c *OIDCConfig) { c.Rules[0].Claims = nil }},
		{"auth.oidc[0].rules[0].claims", func(c *OIDCConfig) { c.Rules[0].Claims = map[string]string{"": "x"} }},
		{"auth.oidc[0].rules[0].claims.repository", func(c *OIDCConfig) { c.Rules[0].Claims["repository"] = "my-org/{a" }},
		{"auth.oidc[0].rules[0].permissions", func(c *OIDCConfig) { c.Rules[0].Permissions = []string{"write:x"} }},
	} {
		cfg := good()
		c.edit(&cfg)
		if _, err := NewOIDC([]OIDCConfig{cfg}); err == nil || !strings.HasPrefix(err.Error(), c.key+":") {
			t.Errorf("NewOIDC(bad %s) = %v, want an error naming it", c.key, err)
		}
	}
	second := good()
	second.Issuer += "/"
	if _, err := NewOIDC([]OIDCConfig{good(), second}); err == nil || !strings.HasPrefix(err.Error(), "auth.oidc[1].issuer:") {
		t.Errorf("NewOIDC(one issuer twice) = %v, want an error naming auth.oidc[1].issuer", err)
	}
	if _, err := NewOIDC([]OIDCConfig{good()}); err != nil {
		t.Errorf("NewOIDC(good) = %v", err)
	}
}

// TestOIDCKeyRefetch: tokens the cached keys don't verify make the JWKS be
// fetched again, but at most once per keyRefetch, so forgeries can't
// flood the issuer; a rotation is picked up at the first new kid after
// that.
func TestOIDCKeyRefetch(t *testing.T) {
	is := newIssuer(t)
	o, err := NewOIDC([]OIDCConfig{{Issuer: is.srv.URL, Audience: "nora", Rules: []OIDCRule{
		{Claims: map[string]string{"repository": "my-org/*"}, Permissions: []string{"pull:**"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	o.now = clk.now
	claims := githubClaims(is.srv.URL, "my-org/app", "refs/heads/main")
	if _, _, err := o.Verify(t.Context(), is.token(t, claims)); err != nil || is.fetched.Load() != 1 {
		t.Fatalf("Verify = %v after %d JWKS fetches, want ok after 1", err, is.fetched.Load())
	}
	forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for i := range 50 {
		kid := is.kid
		if i%2 == 0 {
			kid = fmt.Sprint("random-", i)
		}
		if _, _, err := o.Verify(t.Context(), sign(t, forger, kid, claims)); err == nil {
			t.Fatal("Verify(forged token) succeeded")
		}
	}
	if n := is.fetched.Load(); n != 1 {
		t.Errorf("50 forged tokens within %s: %d JWKS fetches, want 1", keyRefetch, n)
	}
	clk.advance(keyRefetch)
	is.rotate(t, "k2", "ES256")
	if _, _, err := o.Verify(t.Context(), is.token(t, claims)); err != nil || is.fetched.Load() != 2 {
		t.Errorf("Verify(new kid after %s) = %v after %d fetches, want ok after 2", keyRefetch, err, is.fetched.Load())
	}
	// Concurrent logins after a rotation share one fetch.
	clk.advance(keyRefetch)
	is.rotate(t, "k3", "RS256")
	tok := is.token(t, claims)
	errs := make(chan error, 20)
	for range 20 {
		go func() { _, _, err := o.Verify(t.Context(), tok); errs <- err }()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Verify after a rotation = %v", err)
		}
	}
	if n := is.fetched.Load(); n != 3 {
		t.Errorf("20 concurrent logins after a rotation: %d fetches in all, want 3", n)
	}
}
