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
	// Issuer is the token's iss, e.g. https://token.actions.githubusercontent.com.
	Issuer string `toml:"issuer"`
	// Audience the ID token must be issued for (its aud).
	Audience string `toml:"audience"`
	// JWKSURL, if set, is used instead of the issuer's discovery document.
	JWKSURL string `toml:"jwks_url"`
	// MaxTokenLifetime refuses ID tokens valid for longer (exp − iat).
	MaxTokenLifetime string `toml:"max_token_lifetime"`
	// Rules map claims to permissions; no matching rule, no access.
	Rules []OIDCRule `toml:"rules"`
}

// OIDCRule grants Permissions to ID tokens whose claims match every glob
// in Claims. In claim globs `*` never crosses '/' or ':'.
type OIDCRule struct {
	Claims      map[string]string `toml:"claims"`
	Permissions []string          `toml:"permissions"`
}

// defaultMaxTokenLifetime is longer than CI providers' tokens live.
const defaultMaxTokenLifetime = time.Hour

// claimGlobs keep `*` within one path segment or ref component.
var claimGlobs = glob.Compiler{Separators: []rune{'/', ':'}}

func (c OIDCConfig) validate(key string) error {
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("%s.issuer: want an https URL, got %q", key, c.Issuer)
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
}

type oidcIssuer struct {
	cfg      OIDCConfig
	lifetime time.Duration
	rules    []oidcRule

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier // set on first use: discovery may be down at start
}

type oidcRule struct {
	claims map[string]*glob.Pattern
	perms  *Permissions
}

// NewOIDC compiles the issuers' rules. Discovery happens on first use and
// is retried until it succeeds, so an issuer that is down does not stop the
// registry.
func NewOIDC(cfgs []OIDCConfig) (*OIDC, error) {
	o := &OIDC{issuers: map[string]*oidcIssuer{}}
	for i, c := range cfgs {
		if err := c.validate(fmt.Sprintf("auth.oidc[%d]", i)); err != nil {
			return nil, err
		}
		is := &oidcIssuer{cfg: c, lifetime: defaultMaxTokenLifetime}
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
		o.issuers[strings.TrimSuffix(c.Issuer, "/")] = is
	}
	return o, nil
}

// looksLikeJWT tells an ID token sent as a password from a password.
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// Verify checks raw against its issuer's keys, audience and lifetime, and
// returns an identity granted the union of the permissions of every rule
// its claims match. No matching rule is an error: no access.
func (o *OIDC) Verify(ctx context.Context, raw string) (*Identity, time.Time, error) {
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, time.Time{}, err
	}
	is := o.issuers[strings.TrimSuffix(iss, "/")]
	if is == nil {
		return nil, time.Time{}, errors.New("ID token from an untrusted issuer")
	}
	v, err := is.verifierFor(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, time.Time{}, err
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, time.Time{}, err
	}
	if tok.IssuedAt.IsZero() || tok.Expiry.Sub(tok.IssuedAt) > is.lifetime {
		return nil, time.Time{}, fmt.Errorf("ID token lifetime exceeds %s", is.lifetime)
	}
	var grants []*Permissions
	for _, r := range is.rules {
		if r.matches(claims) {
			grants = append(grants, r.perms)
		}
	}
	if len(grants) == 0 {
		return nil, time.Time{}, errors.New("no rule matches the ID token's claims")
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

func (is *oidcIssuer) verifierFor(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.verifier != nil {
		return is.verifier, nil
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
		return nil, fmt.Errorf("OIDC discovery for %s: %w", is.cfg.Issuer, err)
	}
	is.verifier = p.Verifier(cfg)
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
