package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gobwas/glob"
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
		if d, err := time.ParseDuration(c.MaxTokenLifetime); err != nil || d <= 0 {
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
		is := &oidcIssuer{cfg: c, label: c.Name, lifetime: defaultMaxTokenLifetime}
		if is.label == "" {
			is.label = c.Issuer
		}
		if c.MaxTokenLifetime != "" {
			is.lifetime, _ = time.ParseDuration(c.MaxTokenLifetime)
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
	cfg := &oidc.Config{ClientID: is.cfg.Audience, SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256, oidc.RS512, oidc.ES384, oidc.PS256}}
	// The key set outlives the request that happened to create it; its
	// fetches, discovery included, are bounded by the client's timeout.
	kctx := oidc.ClientContext(context.WithoutCancel(ctx), &http.Client{Timeout: 10 * time.Second})
	if is.cfg.JWKSURL != "" {
		is.verifier = oidc.NewVerifier(is.cfg.Issuer, oidc.NewRemoteKeySet(kctx, is.cfg.JWKSURL), cfg)
		return is.verifier, nil
	}
	p, err := oidc.NewProvider(kctx, is.cfg.Issuer)
	if err != nil {
		is.failed, is.failedAt = fmt.Errorf("%s: OIDC discovery failed, retrying at the next login after %s: %w", is.label, retry, err), now
		return nil, is.failed
	}
	is.verifier, is.failed = p.Verifier(cfg), nil
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
