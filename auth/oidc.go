package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/gobwas/glob"
	"github.com/nora-registry/nora/storage"
)

// OIDCConfig is one [[auth.oidc]] entry: an issuer whose ID tokens (GitHub
// Actions, GitLab CI, any OIDC provider) are exchanged for registry tokens.
type OIDCConfig struct {
	// Name labels the entry in logs, e.g. "github".
	Name string `toml:"name"`
	// Issuer is the token's iss, e.g. https://token.actions.githubusercontent.com.
	Issuer string `toml:"issuer"`
	// Audience the ID token must be issued for (its aud).
	Audience string `toml:"audience"`
	// JWKSURL, if set, is used instead of the issuer's discovery document.
	JWKSURL string `toml:"jwks_url"`
	// MaxTokenLifetime refuses ID tokens valid for longer (exp − iat),
	// and tokens issued in the future. Default "1h".
	MaxTokenLifetime string `toml:"max_token_lifetime"`
	// Rules map claims to permissions; no matching rule, no access.
	Rules []OIDCRule `toml:"rules"`
}

// OIDCRule grants Permissions to ID tokens whose claims match every glob
// in Claims. In claim globs `*` and `?` never cross '/' or ':' (`**`
// does); only string claims can match.
type OIDCRule struct {
	Claims      map[string]string `toml:"claims"`
	Permissions []string          `toml:"permissions"`
}

// defaultMaxTokenLifetime is longer than CI providers' tokens live.
const defaultMaxTokenLifetime = time.Hour

// Clock skew allowed between the issuer and the registry for iat.
const oidcClockSkew = time.Minute

// discoveryRetry is how long a failed discovery is remembered before the
// issuer is asked again, so a down issuer is not hit by every login.
const discoveryRetry = 5 * time.Second

// keyRefetch is the least time between two fetches of an issuer's JWKS
// prompted by tokens the cached keys don't verify (a new kid after a
// rotation, or a forgery): a stream of forged tokens must not turn the
// registry into a load generator against the issuer.
const keyRefetch = 5 * time.Second

// oidcAlgs are the signature algorithms accepted on ID tokens.
var oidcAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

// claimGlobs keep `*` within one path segment or ref component.
var claimGlobs = glob.Compiler{Separators: []rune{'/', ':'}}

func (c OIDCConfig) validate(key string) error {
	u, err := url.Parse(c.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s.issuer: want an https URL, got %q", key, c.Issuer)
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%s.jwks_url: want an https URL, got %q", key, c.JWKSURL)
		}
	}
	if c.Audience == "" {
		return fmt.Errorf("%s.audience: must be set", key)
	}
	if c.MaxTokenLifetime != "" {
		if d, err := storage.ParseDuration(c.MaxTokenLifetime); err != nil || d <= 0 {
			return fmt.Errorf("%s.max_token_lifetime: %q is not a positive duration", key, c.MaxTokenLifetime)
		}
	}
	if len(c.Rules) == 0 {
		return fmt.Errorf("%s.rules: at least one rule is needed", key)
	}
	for i, r := range c.Rules {
		rk := fmt.Sprintf("%s.rules[%d]", key, i)
		if len(r.Claims) == 0 {
			return fmt.Errorf("%s.claims: at least one claim is needed", rk)
		}
		for k, v := range r.Claims {
			if k == "" {
				return fmt.Errorf("%s.claims: empty claim name", rk)
			}
			if _, err := claimGlobs.Compile(v); err != nil {
				return fmt.Errorf("%s.claims.%s: %w", rk, k, err)
			}
		}
		if _, err := ParsePermissions(r.Permissions); err != nil {
			return fmt.Errorf("%s.permissions: %w", rk, err)
		}
	}
	return nil
}

// OIDC verifies ID tokens of the configured issuers and maps their claims
// to permissions.
type OIDC struct {
	issuers map[string]*oidcIssuer
	now     func() time.Time
	retry   time.Duration // discoveryRetry; tests shorten it
}

type oidcIssuer struct {
	cfg      OIDCConfig
	label    string // cfg.Name, or the issuer URL
	now      func() time.Time
	lifetime time.Duration
	rules    []oidcRule

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier // set on first use: discovery may be down at start
	failed   error                 // the last discovery failure,
	failedAt time.Time             // retried after discoveryRetry
}

type oidcRule struct {
	claims map[string]*glob.Pattern
	perms  *Permissions
}

// NewOIDC compiles the issuers' rules. Discovery happens on first use and
// is retried until it succeeds, so an issuer that is down does not stop the
// registry.
func NewOIDC(cfgs []OIDCConfig) (*OIDC, error) {
	o := &OIDC{issuers: map[string]*oidcIssuer{}, now: time.Now, retry: discoveryRetry}
	first := map[string]int{}
	for i, c := range cfgs {
		key := fmt.Sprintf("auth.oidc[%d]", i)
		if err := c.validate(key); err != nil {
			return nil, err
		}
		iss := strings.TrimSuffix(c.Issuer, "/")
		if j, ok := first[iss]; ok {
			return nil, fmt.Errorf("%s.issuer: %q is already auth.oidc[%d]'s; put all its rules in one entry", key, c.Issuer, j)
		}
		first[iss] = i
		is := &oidcIssuer{cfg: c, label: c.Name, lifetime: defaultMaxTokenLifetime, now: func() time.Time { return o.now() }}
		if is.label == "" {
			is.label = c.Issuer
		}
		if c.MaxTokenLifetime != "" {
			is.lifetime, _ = storage.ParseDuration(c.MaxTokenLifetime)
		}
		for _, r := range c.Rules {
			rule := oidcRule{claims: map[string]*glob.Pattern{}}
			for k, v := range r.Claims {
				rule.claims[k], _ = claimGlobs.Compile(v)
			}
			rule.perms, _ = ParsePermissions(r.Permissions)
			is.rules = append(is.rules, rule)
		}
		o.issuers[iss] = is
	}
	return o, nil
}

// looksLikeJWT tells an ID token sent as a password from a password.
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// Verify checks raw against its issuer's keys, audience and lifetime, and
// returns an identity named "oidc:<issuer host>:<sub>", granted the union
// of the permissions of every rule its claims match, and the token's
// expiry. No matching rule is an error: no access. Errors never quote the
// token.
func (o *OIDC) Verify(ctx context.Context, raw string) (*Identity, time.Time, error) {
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, time.Time{}, err
	}
	is := o.issuers[strings.TrimSuffix(iss, "/")]
	if is == nil {
		return nil, time.Time{}, fmt.Errorf("ID token from an untrusted issuer %q", clip(iss))
	}
	v, err := is.verifierFor(ctx, o.now(), o.retry)
	if err != nil {
		return nil, time.Time{}, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: %w", is.label, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, time.Time{}, err
	}
	switch {
	case tok.IssuedAt.IsZero():
		return nil, time.Time{}, fmt.Errorf("%s: ID token without iat", is.label)
	case tok.IssuedAt.After(o.now().Add(oidcClockSkew)):
		return nil, time.Time{}, fmt.Errorf("%s: ID token issued in the future", is.label)
	case tok.Expiry.Sub(tok.IssuedAt) > is.lifetime:
		return nil, time.Time{}, fmt.Errorf("%s: ID token lifetime exceeds max_token_lifetime %s", is.label, is.lifetime)
	}
	var grants []*Permissions
	for _, r := range is.rules {
		if r.matches(claims) {
			grants = append(grants, r.perms)
		}
	}
	if len(grants) == 0 {
		return nil, time.Time{}, fmt.Errorf("%s: no rule matches the ID token's claims (sub %q)", is.label, clip(tok.Subject))
	}
	host := iss
	if u, err := url.Parse(iss); err == nil {
		host = u.Host
	}
	id := &Identity{Name: "oidc:" + host + ":" + tok.Subject, Kind: KindOIDC, Grants: (&Permissions{}).Union(grants...)}
	return id, tok.Expiry, nil
}

func (r oidcRule) matches(claims map[string]any) bool {
	for k, g := range r.claims {
		v, ok := claims[k].(string)
		if !ok || !g.Match(v) {
			return false
		}
	}
	return true
}

// verifierFor returns the issuer's verifier, running discovery the first
// time, and again after a failure once retry has passed.
func (is *oidcIssuer) verifierFor(ctx context.Context, now time.Time, retry time.Duration) (*oidc.IDTokenVerifier, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.verifier != nil {
		return is.verifier, nil
	}
	if is.failed != nil && now.Sub(is.failedAt) < retry {
		return nil, is.failed
	}
	cfg := &oidc.Config{ClientID: is.cfg.Audience, SupportedSigningAlgs: oidcAlgs}
	// Discovery and key fetches outlive the request that happened to
	// start them; the client's timeout bounds them.
	client := &http.Client{Timeout: 10 * time.Second}
	keys := &jwksKeySet{url: is.cfg.JWKSURL, client: client, now: is.now, every: keyRefetch}
	if keys.url == "" {
		p, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), client), is.cfg.Issuer)
		var doc struct {
			JWKS string `json:"jwks_uri"`
		}
		if err == nil {
			if err = p.Claims(&doc); err == nil && doc.JWKS == "" {
				err = errors.New("no jwks_uri in the discovery document")
			}
		}
		if err != nil {
			is.failed, is.failedAt = fmt.Errorf("%s: OIDC discovery failed, retrying at the next login after %s: %w", is.label, retry, err), now
			return nil, is.failed
		}
		keys.url = doc.JWKS
	}
	is.verifier, is.failed = oidc.NewVerifier(is.cfg.Issuer, keys, cfg), nil
	return is.verifier, nil
}

// unverifiedIssuer reads iss to pick the issuer whose keys verify the
// token; nothing else is trusted before verification.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("malformed ID token")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", errors.New("malformed ID token")
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Iss == "" {
		return "", errors.New("malformed ID token")
	}
	return c.Iss, nil
}

// jwksKeySet verifies signatures with an issuer's JWKS. Keys are fetched
// on first use and again when a token's signature does not verify with
// them, at most once per every: go-oidc's RemoteKeySet fetches again on
// every failure, which forged tokens would turn into a flood.
type jwksKeySet struct {
	url    string
	client *http.Client
	now    func() time.Time
	every  time.Duration

	fetchMu sync.Mutex // one fetch at a time; verifications go on meanwhile

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time // last fetch attempt, successful or not
	failed  error     // of that attempt
}

// VerifySignature implements oidc.KeySet.
func (k *jwksKeySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	algs := make([]jose.SignatureAlgorithm, len(oidcAlgs))
	for i, a := range oidcAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSigned(raw, algs)
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys, seen := k.keys, k.fetched
	k.mu.Unlock()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	keys, err = k.refresh(ctx, seen)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errors.New("no key of the issuer verifies the signature")
}

// refresh fetches the keys again, unless someone did since seen or the
// last attempt is too recent; either way it returns the current keys.
func (k *jwksKeySet) refresh(ctx context.Context, seen time.Time) ([]jose.JSONWebKey, error) {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	k.mu.Lock()
	keys, last := k.keys, k.fetched
	k.mu.Unlock()
	now := k.now()
	if last.After(seen) || (!last.IsZero() && now.Sub(last) < k.every) {
		k.mu.Lock()
		defer k.mu.Unlock()
		if len(keys) == 0 && k.failed != nil {
			return nil, k.failed
		}
		return keys, nil
	}
	fresh, err := k.fetch(context.WithoutCancel(ctx))
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fetched = now
	if err != nil {
		k.failed = fmt.Errorf("fetching %s: %w", k.url, err)
		return k.keys, k.failed
	}
	k.keys, k.failed = fresh, nil
	return fresh, nil
}

func (k *jwksKeySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decoding the JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, key := range set.Keys {
		if key.Use != "enc" && key.IsPublic() {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// verifyWith verifies jws with the key named kid, or with each key when
// the token names none.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}
