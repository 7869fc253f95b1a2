package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// issuer is a real OIDC issuer for tests: discovery at
// /.well-known/openid-configuration and a JWKS at /jwks, served over HTTP
// from RSA or EC keys made at test time. It can rotate its keys and go
// down.
type issuer struct {
	srv *httptest.Server

	mu   sync.Mutex
	keys map[string]crypto.Signer // published in the JWKS
	kid  string                   // the key tokens are signed with

	down       atomic.Bool  // discovery and JWKS answer 503
	discovered atomic.Int32 // discovery documents served
	fetched    atomic.Int32 // JWKS served
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{keys: map[string]crypto.Signer{}}
	is.rotate(t, "k1", "RS256")
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		is.discovered.Add(1)
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
			"response_types_supported":              []string{"id_token"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		is.fetched.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		keys := []map[string]string{}
		for kid, k := range is.keys {
			keys = append(keys, jwk(kid, k.Public()))
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

// jwk is the JSON Web Key of an RSA or P-256 public key.
func jwk(kid string, pub crypto.PublicKey) map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, _ := k.Bytes() // 0x04 || X || Y, each 32 bytes
		return map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
			"x": b64(raw[1:33]), "y": b64(raw[33:])}
	}
	panic("unsupported key")
}

// rotate replaces the issuer's keys with a new one of alg (RS256 or
// ES256) under kid: tokens signed with the old keys no longer verify.
func (is *issuer) rotate(t *testing.T, kid, alg string) {
	t.Helper()
	var k crypto.Signer
	var err error
	if alg == "ES256" {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	is.mu.Lock()
	is.keys = map[string]crypto.Signer{kid: k}
	is.kid = kid
	is.mu.Unlock()
}

// token signs claims with the issuer's current key.
func (is *issuer) token(t *testing.T, claims jwt.MapClaims) string {
	is.mu.Lock()
	key, kid := is.keys[is.kid], is.kid
	is.mu.Unlock()
	return sign(t, key, kid, claims)
}

// sign signs claims with key (RS256 or ES256 by its type) under kid.
func sign(t *testing.T, key crypto.Signer, kid string, claims jwt.MapClaims) string {
	t.Helper()
	method := jwt.SigningMethod(jwt.SigningMethodRS256)
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		method = jwt.SigningMethodES256
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// githubClaims are shaped like a GitHub Actions ID token for a push to
// ref of repo, requested with audience "nora".
func githubClaims(iss, repo, ref string) jwt.MapClaims {
	now := time.Now()
	owner, _, _ := strings.Cut(repo, "/")
	return jwt.MapClaims{"iss": iss, "aud": "nora", "sub": "repo:" + repo + ":ref:" + ref,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "6f1b5c3e",
		"repository": repo, "repository_owner": owner, "repository_id": "123456", "repository_owner_id": "654321",
		"repository_visibility": "private", "ref": ref, "ref_type": "branch", "ref_protected": "true",
		"sha": "0123456789abcdef0123456789abcdef01234567", "actor": "octocat", "actor_id": "1",
		"workflow": "release", "workflow_ref": repo + "/.github/workflows/release.yml@" + ref,
		"job_workflow_ref": repo + "/.github/workflows/release.yml@" + ref,
		"environment":      "production", "event_name": "push", "run_id": "42", "run_number": "7", "run_attempt": "1",
		"runner_environment": "github-hosted"}
}

// gitlabClaims are shaped like a GitLab CI id_token for a pipeline on
// branch ref of project, requested with aud "nora".
func gitlabClaims(iss, project, ref string, protected bool) jwt.MapClaims {
	now := time.Now()
	namespace := project[:strings.LastIndexByte(project, '/')]
	p := "false"
	if protected {
		p = "true"
	}
	return jwt.MapClaims{"iss": iss, "aud": "nora", "sub": "project_path:" + project + ":ref_type:branch:ref:" + ref,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "a1b2c3",
		"namespace_id": "9", "namespace_path": namespace, "project_id": "22", "project_path": project,
		"user_id": "5", "user_login": "dev", "user_email": "dev@example.com", "pipeline_id": "1001",
		"pipeline_source": "push", "job_id": "5001", "ref": ref, "ref_type": "branch", "ref_path": "refs/heads/" + ref,
		"ref_protected": p, "environment": "production", "environment_protected": "true",
		"runner_id": "3", "runner_environment": "gitlab-hosted", "sha": "89abcdef", "ci_config_ref_uri": "gitlab.example.com/" + project + "//.gitlab-ci.yml@refs/heads/" + ref}
}

// edit applies f to c and returns it, for one-off attack tokens.
func edit(c jwt.MapClaims, f func(jwt.MapClaims)) jwt.MapClaims { f(c); return c }
