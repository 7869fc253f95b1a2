package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// basicCacheTTL bounds how long a successful password check is reused, so
// clients that send Basic credentials on every call don't run bcrypt on
// every call.
const basicCacheTTL = time.Minute

// Service is the registry's Authorizer and token service, built from the
// [auth] section.
type Service struct {
	cfg       Config
	signer    *signer
	lifetime  time.Duration
	refresh   time.Duration
	users     map[string]*user
	anonymous *Permissions
	oidc      *OIDC // nil without [[auth.oidc]]
	log       zerolog.Logger

	mu     sync.Mutex
	cache  map[[32]byte]cached // verified tokens and password checks
	sweeps int
}

type user struct {
	name   string
	hash   []byte
	groups []string
	perms  *Permissions
}

type cached struct {
	id      *Identity
	expires time.Time
}

// New builds the service from cfg, with its signing key in dataDir.
func New(cfg Config, dataDir string, log zerolog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sg, err := loadSigner(dataDir)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, signer: sg, users: map[string]*user{}, log: log, cache: map[[32]byte]cached{}}
	s.lifetime, _ = time.ParseDuration(cfg.TokenLifetime)
	s.refresh, _ = time.ParseDuration(cfg.RefreshLifetime)
	s.anonymous, _ = ParsePermissions(cfg.Anonymous)
	if len(cfg.OIDC) > 0 {
		if s.oidc, err = NewOIDC(cfg.OIDC); err != nil {
			return nil, err
		}
	}
	for _, u := range cfg.Users {
		var perms []*Permissions
		for _, r := range cfg.Rules {
			if slices.Contains(r.Users, u.Name) || slices.ContainsFunc(r.Groups, func(g string) bool { return slices.Contains(u.Groups, g) }) {
				p, _ := ParsePermissions(r.Permissions)
				perms = append(perms, p)
			}
		}
		s.users[u.Name] = &user{name: u.Name, hash: []byte(u.Password), groups: u.Groups, perms: (&Permissions{}).Union(perms...)}
	}
	return s, nil
}

// Authenticate implements Authorizer.
func (s *Service) Authenticate(r *http.Request) (*Identity, error) {
	h := r.Header.Get("Authorization")
	switch {
	case h == "":
		return &Identity{Kind: KindAnonymous, Grants: s.anonymous}, nil
	case len(h) > 7 && strings.EqualFold(h[:7], "Bearer "):
		id, err := s.verifyToken(strings.TrimSpace(h[7:]))
		if err != nil {
			s.log.Warn().Str("remote", r.RemoteAddr).Str("reason", "invalid token").Msg("authentication failed")
			return nil, s.unauthorized(r, "", "", "invalid or expired token")
		}
		return id, nil
	}
	name, password, ok := r.BasicAuth()
	if !ok {
		return nil, s.unauthorized(r, "", "", "unsupported Authorization scheme")
	}
	id, ok := s.checkPassword(r.Context(), name, password)
	if !ok {
		s.log.Warn().Str("remote", r.RemoteAddr).Str("user", name).Str("reason", "bad credentials").Msg("authentication failed")
		return nil, s.unauthorized(r, "", "", "invalid username or password")
	}
	return id, nil
}

// Authorize implements Authorizer.
func (s *Service) Authorize(r *http.Request, id *Identity, repo string, action Action) error {
	if repo == "" && action == "" { // GET /v2/ and the catalog
		// Always a challenge for anonymous callers, even when anonymous
		// pulls are allowed: clients probe /v2/ to learn the realm, and
		// `docker login` must not succeed without checking a password.
		if id.Kind == KindAnonymous {
			return s.unauthorized(r, "", "", "authentication required")
		}
		return nil
	}
	if id.Grants != nil && id.Grants.Allows(repo, action) {
		return nil
	}
	// A caller who could get the right from the token endpoint is sent
	// there; one who could not is denied.
	if id.Kind == KindAnonymous || (id.Kind == KindToken && s.userAllows(id.Name, repo, action)) {
		return s.unauthorized(r, repo, action, "authentication required")
	}
	s.log.Warn().Str("remote", r.RemoteAddr).Str("identity", id.Name).Str("repository", repo).
		Str("action", string(action)).Msg("access denied")
	return &Error{Status: http.StatusForbidden, Message: "requested access to the resource is denied"}
}

func (s *Service) userAllows(name, repo string, action Action) bool {
	u := s.users[name]
	return u != nil && u.perms.Allows(repo, action)
}

// unauthorized is a 401 with the challenge that sends the client to the
// token endpoint for scope.
func (s *Service) unauthorized(r *http.Request, repo string, action Action, msg string) *Error {
	c := `Bearer realm="` + s.realm(r) + `/auth/token",service="` + s.cfg.Service + `"`
	if repo != "" {
		c += `,scope="repository:` + repo + `:` + string(action) + `"`
	}
	return &Error{Status: http.StatusUnauthorized, Challenge: c, Message: msg}
}

func (s *Service) realm(r *http.Request) string {
	if s.cfg.Realm != "" {
		return strings.TrimSuffix(s.cfg.Realm, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// checkPassword checks name and password, reusing a recent success. The
// password may be an OIDC ID token, whatever the name (docker login -u oidc
// -p $ID_TOKEN).
func (s *Service) checkPassword(ctx context.Context, name, password string) (*Identity, bool) {
	key := sha256.Sum256([]byte("basic\x00" + name + "\x00" + password))
	if id := s.cached(key); id != nil {
		return id, true
	}
	if s.oidc != nil && looksLikeJWT(password) {
		id, err := s.verifyIDToken(ctx, password)
		return id, err == nil
	}
	u := s.users[name]
	if u == nil {
		// Spend the time a real check takes, so a probe can't tell
		// unknown users from wrong passwords.
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return nil, false
	}
	if bcrypt.CompareHashAndPassword(u.hash, []byte(password)) != nil {
		return nil, false
	}
	id := &Identity{Name: u.name, Kind: KindUser, Groups: u.groups, Grants: u.perms}
	s.remember(key, id, time.Now().Add(basicCacheTTL))
	return id, true
}

var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("nora"), bcrypt.DefaultCost)

// verifyIDToken checks an OIDC ID token, reusing a recent check until the
// token expires.
func (s *Service) verifyIDToken(ctx context.Context, raw string) (*Identity, error) {
	if s.oidc == nil {
		return nil, errors.New("no OIDC issuer is configured")
	}
	key := sha256.Sum256([]byte("oidc\x00" + raw))
	if id := s.cached(key); id != nil {
		return id, nil
	}
	id, expires, err := s.oidc.Verify(ctx, raw)
	if err != nil {
		s.log.Warn().Err(err).Str("reason", "invalid ID token").Msg("authentication failed")
		return nil, err
	}
	s.remember(key, id, expires)
	return id, nil
}

// verifyToken checks a registry access token, reusing a recent check.
func (s *Service) verifyToken(raw string) (*Identity, error) {
	key := sha256.Sum256([]byte("bearer\x00" + raw))
	if id := s.cached(key); id != nil {
		return id, nil
	}
	c, err := s.signer.verify(raw, s.cfg.Service, s.cfg.Service)
	if err != nil {
		return nil, err
	}
	id := &Identity{Name: c.Subject, Kind: KindToken, Grants: tokenGrants(c.Access)}
	s.remember(key, id, c.ExpiresAt.Time)
	return id, nil
}

func (s *Service) cached(key [32]byte) *Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[key]
	if !ok || time.Now().After(c.expires) {
		return nil
	}
	return c.id
}

// remember caches id until expires; expired entries are swept as the
// cache is written, so it stays bounded by what is live.
func (s *Service) remember(key [32]byte, id *Identity, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache[key] = cached{id: id, expires: expires}
	if s.sweeps++; s.sweeps%1024 == 0 {
		now := time.Now()
		for k, c := range s.cache {
			if now.After(c.expires) {
				delete(s.cache, k)
			}
		}
	}
}
