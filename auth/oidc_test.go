package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

// issuer is a real OIDC issuer: discovery and a JWKS served over HTTP from
// keys made at test time, which it can rotate.
type issuer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey
	kid  string
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{keys: map[string]*rsa.PrivateKey{}}
	is.rotate(t, "k1")
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"id_token"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		defer is.mu.Unlock()
		var keys []map[string]string
		for kid, k := range is.keys {
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) rotate(t *testing.T, kid string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is.mu.Lock()
	is.keys = map[string]*rsa.PrivateKey{kid: k}
	is.kid = kid
	is.mu.Unlock()
}

// token signs claims with the issuer's current key; edit may change them.
func (is *issuer) token(t *testing.T, claims jwt.MapClaims) string {
	is.mu.Lock()
	defer is.mu.Unlock()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = is.kid
	s, err := tok.SignedString(is.keys[is.kid])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// githubClaims are shaped like a GitHub Actions ID token.
func githubClaims(iss, repo, ref string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": iss, "aud": "nora", "sub": "repo:" + repo + ":ref:" + ref, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "repository": repo, "repository_owner": strings.Split(repo, "/")[0], "ref": ref,
		"sha": "0123abcd", "workflow": "release", "event_name": "push", "job_workflow_ref": repo + "/.github/workflows/release.yml@" + ref}
}

// gitlabClaims are shaped like a GitLab CI id_token.
func gitlabClaims(iss, project, ref string, protected bool) jwt.MapClaims {
	now := time.Now()
	p := "false"
	if protected {
		p = "true"
	}
	return jwt.MapClaims{"iss": iss, "aud": "nora", "sub": "project_path:" + project + ":ref_type:branch:ref:" + ref, "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "project_path": project, "namespace_path": strings.Split(project, "/")[0], "ref": ref,
		"ref_type": "branch", "ref_protected": p, "pipeline_source": "push"}
}

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
	is.rotate(t, "k2")
	rotated := is.token(t, githubClaims(is.srv.URL, "my-org/other", "refs/heads/main"))
	if code, _ := post(s.OIDCHandler(), url.Values{"id_token": {rotated}}, ""); code != 200 {
		t.Fatalf("token after key rotation = %d, want 200", code)
	}
}

func TestOIDCAttacks(t *testing.T) {
	is := newIssuer(t)
	s := newOIDCService(t, is)
	foreign := newIssuer(t)
	now := time.Now()
	edit := func(c jwt.MapClaims, f func(jwt.MapClaims)) jwt.MapClaims { f(c); return c }
	ok := githubClaims(is.srv.URL, "my-org/app", "refs/heads/main")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, ok).SignedString(jwt.UnsafeAllowNoneSignatureType)
	foreign.kid = is.kid // a foreign key under a known kid
	for name, tok := range map[string]string{
		"untrusted issuer":       foreign.token(t, githubClaims(foreign.srv.URL, "my-org/app", "refs/heads/main")),
		"foreign key, known kid": foreign.token(t, ok),
		"wrong audience":         is.token(t, edit(githubClaims(is.srv.URL, "my-org/app", "refs/heads/main"), func(c jwt.MapClaims) { c["aud"] = "other" })),
		"expired":                is.token(t, edit(githubClaims(is.srv.URL, "my-org/app", "refs/heads/main"), func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"lifetime too long":      is.token(t, edit(githubClaims(is.srv.URL, "my-org/app", "refs/heads/main"), func(c jwt.MapClaims) { c["exp"] = now.Add(48 * time.Hour).Unix() })),
		"alg none":               none,
		"look-alike owner":       is.token(t, githubClaims(is.srv.URL, "my-org-evil/app", "refs/heads/main")),
		"star crossing a slash":  is.token(t, githubClaims(is.srv.URL, "my-org/app/x", "refs/heads/main")),
		"other branch":           is.token(t, githubClaims(is.srv.URL, "my-org/app", "refs/heads/main-evil")),
		"missing claim":          is.token(t, edit(githubClaims(is.srv.URL, "my-org/app", "refs/heads/main"), func(c jwt.MapClaims) { delete(c, "ref") })),
		"non-string claim":       is.token(t, edit(githubClaims(is.srv.URL, "my-org/app", "refs/heads/main"), func(c jwt.MapClaims) { c["ref"] = []string{"refs/heads/main"} })),
		"unprotected gitlab ref": is.token(t, gitlabClaims(is.srv.URL, "group/project", "feature", false)),
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v2/", nil)
			r.SetBasicAuth("oidc", tok)
			if id, err := s.Authenticate(r); err == nil {
				t.Fatalf("Authenticate(%s) = %+v, want rejection", name, id)
			}
		})
	}
}
