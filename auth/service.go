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

	"github.com/nora-registry/nora/storage"
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
	oidc      *OIDC        // nil without [[auth.oidc]]
	robots    *Robots      // nil: robot tokens are not accepted
	limiter   *RateLimiter // nil: logins are not limited
	metrics   *metrics
	log       zerolog.Logger
	audit     *storage.AuditWriter // nil: nothing is recorded
	unfollow  func()               // stops following robot revocations

	mu     sync.Mutex
	cache  map[[32]byte]cached // verified tokens and password checks
	sweeps int
}

type cached struct {
	id      *Identity
	expires time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithRobots accepts the robot tokens of r as passwords, and forgets
// cached checks of revoked ones at once.
func WithRobots(r *Robots) Option {
	return func(s *Service) {
		s.robots = r
	}
}

// WithRateLimiter limits credential checks that aren't cached (passwords,
// robot tokens, ID tokens, refresh tokens) by l's [rate_limit.auth] rates
// and login back-off. Serve passes the limiter of its API limits, so both
// share one table of clients, bounded by max_clients, and one metric.
func WithRateLimiter(l *RateLimiter) Option {
	return func(s *Service) { s.limiter = l }
}

// New builds the service from cfg, with its signing key in dataDir.
func New(cfg Config, dataDir string, log zerolog.Logger, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sg, err := loadSigner(dataDir)
	if err != nil {
		return nil, err
	}
	s := &Service{signer: sg, log: log}
	for _, o := range opts {
		o(s)
	}
	if s.metrics == nil {
		s.metrics = newMetrics(nil)
	}
	if err := s.configure(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload returns a service built from cfg, with limiter (as
// WithRateLimiter) for its logins, that shares s's signing key, robot
// tokens, metrics, audit record and logger: tokens, refresh tokens and
// dashboard sessions s issued stay valid wherever cfg still allows them.
// Its cache starts empty, since what s cached was checked against s's
// settings. s keeps working for the requests that hold it; Close it when
// they are done with it.
func (s *Service) Reload(cfg Config, limiter *RateLimiter) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Service{signer: s.signer, robots: s.robots, limiter: limiter, metrics: s.metrics, log: s.log, audit: s.audit}
	if err := n.configure(cfg); err != nil {
		return nil, err
	}
	return n, nil
}

// Close stops s from following robot token revocations, which only the
// service that replaced it needs to.
func (s *Service) Close() {
	if s.unfollow != nil {
		s.unfollow()
	}
}

// configure sets what cfg decides on a service that holds its signer,
// robots and options.
func (s *Service) configure(cfg Config) error {
	var err error
	s.cfg, s.cache = cfg, map[[32]byte]cached{}
	if s.users, err = cfg.buildUsers(); err != nil {
		return err
	}
	for _, u := range s.users {
		u.generation = s.signer.mac(append([]string{"refresh", u.name}, u.credentials()...)...)
	}
	s.lifetime, _ = storage.ParseDuration(cfg.TokenLifetime)
	s.refresh, _ = storage.ParseDuration(cfg.RefreshLifetime)
	s.anonymous, _ = ParsePermissions(cfg.Anonymous)
	if len(cfg.OIDC) > 0 {
		if s.oidc, err = NewOIDC(cfg.OIDC); err != nil {
			return err
		}
	}
	if s.robots != nil {
		s.unfollow = s.robots.OnRevoke(s.forget)
	}
	return nil
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
			s.failed(r, "invalid_token", "")
			return nil, s.unauthorized(r, "", "", "invalid or expired token")
		}
		return id, nil
	}
	name, password, ok := r.BasicAuth()
	if !ok {
		s.failed(r, "unsupported_scheme", "")
		return nil, s.unauthorized(r, "", "", "unsupported Authorization scheme")
	}
	id, err := s.checkPassword(r, name, password)
	if err != nil {
		if e, ok := overLimit(err); ok {
			return nil, e
		}
		s.failed(r, "bad_credentials", name)
		return nil, s.unauthorized(r, "", "", "invalid username or password")
	}
	return id, nil
}

// failed counts and logs an authentication failure. The credential is
// never logged, and neither is a user name that is no configured user's:
// it may be a password typed into the wrong field. Such a name is logged
// as user_unknown and a keyed hash, so repeated attempts with one name can
// still be told apart.
func (s *Service) failed(r *http.Request, reason, name string) {
	s.metrics.failures.WithLabelValues(reason).Inc()
	s.auditFailed(r, reason, name)
	e := s.log.Warn().Str("remote", r.RemoteAddr).Str("reason", reason).Str("method", r.Method).Str("path", r.URL.Path)
	if s.users[name] != nil {
		e = e.Str("user", name)
	} else if name != "" {
		e = e.Bool("user_unknown", true).Str("user_hash", s.signer.mac("user", name))
	}
	e.Msg("authentication failed")
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
	// Both messages name the action and repository, and so differ from
	// the UNAUTHORIZED and DENIED codes' own texts: docker parses such a
	// text alone as a bare code, which it does not know not to retry, and
	// retries a refused push for a minute.
	if id.Kind == KindAnonymous || (id.Kind == KindToken && s.couldGet(r.Context(), id, repo, action)) {
		return s.unauthorized(r, repo, action, "authentication required for "+string(action)+" access to "+repo)
	}
	s.metrics.failures.WithLabelValues("denied").Inc()
	s.auditDenied(r, id, repo, action)
	s.log.Warn().Str("remote", r.RemoteAddr).Str("identity", id.Name).Str("kind", string(id.Kind)).
		Str("repository", repo).Str("action", string(action)).Msg("access denied")
	return &Error{Status: http.StatusForbidden, Message: "no " + string(action) + " access to " + repo}
}

// subjectGrants returns the rights, with the anonymous ones, that the user
// or robot named may have now, or nil if it has none any more.
func (s *Service) subjectGrants(ctx context.Context, kind Kind, name string) Grants {
	switch kind {
	case KindUser:
		if u := s.users[name]; u != nil {
			return s.withAnonymous(u.perms)
		}
	case KindRobot:
		if s.robots == nil {
			return nil
		}
		if rb, ok := s.robots.byName(ctx, name); ok {
			if p, err := s.cfg.robotPermissions(rb.Name, rb.Permissions); err == nil {
				return s.withAnonymous(p)
			}
		}
	}
	return nil
}

// couldGet reports whether the holder of token identity id could get a
// token for action on repo: if so, a 401 sends it back to the token
// endpoint; if not, it is denied.
func (s *Service) couldGet(ctx context.Context, id *Identity, repo string, action Action) bool {
	g, _ := id.Grants.(tokenGrants)
	switch g.kind {
	case KindAnonymous:
		return true // logging in may help
	case KindOIDC:
		return true // the next ID token's claims decide
	}
	sg := s.subjectGrants(ctx, g.kind, id.Name)
	return sg != nil && sg.Allows(repo, action)
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

// errBadCredentials is checkPassword's answer to a wrong name or password.
var errBadCredentials = errors.New("invalid username or password")

// checkPassword checks name and password, reusing a recent success. The
// password may be an OIDC ID token, whatever the name (docker login -u oidc
// -p $ID_TOKEN). A check that is not cached is a login attempt of r's
// client: while it is over its login limits the answer is a 429 *Error and
// nothing is checked. Wrong credentials are errBadCredentials, or
// verifyIDToken's error.
func (s *Service) checkPassword(r *http.Request, name, password string) (*Identity, error) {
	key := sha256.Sum256([]byte("basic\x00" + name + "\x00" + password))
	if id := s.cached(key); id != nil {
		return id, nil
	}
	robot := s.robots != nil && strings.HasPrefix(password, robotTokenPrefix)
	if !robot && s.oidc != nil && looksLikeJWT(password) {
		return s.verifyIDToken(r, name, password) // cached and limited on its own
	}
	var id *Identity
	var err error
	if robot {
		// A robot token works whatever the user name, like an ID token,
		// so it proves nothing about that user, and the user's back-off
		// does not apply.
		err = s.attempt(r, name, "", func() bool {
			id = s.checkRobot(r.Context(), key, password)
			return id != nil
		})
	} else {
		err = s.attempt(r, name, name, func() bool {
			id = s.checkUser(key, name, password)
			return id != nil
		})
	}
	if err == nil && id == nil {
		err = errBadCredentials
	}
	return id, err
}

// attempt runs check, a credential check that costs, as a login attempt of
// r's client claiming name ("" when the credential names no one) and
// checking user's password (name, or "" when the credential is no
// password): refused with a 429 *Error while the client or the user is
// over its login limits, else its outcome is reported to the limiter. A
// failure counts against the address and user; a success ends the
// back-off of user, and of no one else.
func (s *Service) attempt(r *http.Request, name, user string, check func() (ok bool)) error {
	if err := s.limiter.allowLogin(r, name, user); err != nil {
		return err
	}
	if check() {
		s.limiter.loginSucceeded(user)
	} else {
		s.limiter.loginFailed(r, user)
	}
	return nil
}

// overLimit returns err as a 429 *Error, if it is the limiter's refusal
// of a login.
func overLimit(err error) (*Error, bool) {
	e, ok := AsError(err)
	return e, ok && e.Status == http.StatusTooManyRequests
}

// checkUser checks a configured user's password with bcrypt and caches a
// success under key for basicCacheTTL.
func (s *Service) checkUser(key [32]byte, name, password string) *Identity {
	u := s.users[name]
	if u == nil {
		// Spend the time a real check takes, so a probe can't tell
		// unknown users from wrong passwords.
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return nil
	}
	if bcrypt.CompareHashAndPassword(u.hash, []byte(password)) != nil {
		return nil
	}
	id := s.userIdentity(u)
	s.remember(key, id, time.Now().Add(basicCacheTTL))
	return id
}

// userIdentity is the identity of configured user u.
func (s *Service) userIdentity(u *user) *Identity {
	return &Identity{Name: u.name, Kind: KindUser, Groups: u.groups, Grants: s.withAnonymous(u.perms)}
}

// withAnonymous returns g together with what anonymous callers may do:
// logging in never loses a right that not logging in has.
func (s *Service) withAnonymous(g Grants) Grants {
	if len(s.anonymous.rules) == 0 {
		return g
	}
	return eitherGrants{g, s.anonymous}
}

// checkRobot checks a robot token and caches the identity under key until
// the token expires, at most basicCacheTTL.
func (s *Service) checkRobot(ctx context.Context, key [32]byte, token string) *Identity {
	rb, ok := s.robots.lookup(ctx, token)
	if !ok {
		return nil
	}
	perms, err := s.cfg.robotPermissions(rb.Name, rb.Permissions)
	if err != nil {
		s.log.Error().Err(err).Str("robot", rb.Name).Msg("robot token permissions")
		return nil
	}
	id := &Identity{Name: rb.Name, Kind: KindRobot, Grants: s.withAnonymous(perms)}
	expires := time.Now().Add(basicCacheTTL)
	if !rb.Expires.IsZero() && rb.Expires.Before(expires) {
		expires = rb.Expires
	}
	s.remember(key, id, expires)
	return id
}

// dummyHash is a bcrypt hash at the default cost, computed on first use:
// hashing at init cost every command, `registry version` included, about
// 60 ms.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("nora"), bcrypt.DefaultCost)
	return h
})

// verifyIDToken checks an OIDC ID token, reusing a recent check until the
// token expires. A check that is not cached is a login attempt of r's
// client under name (the Basic user name, or ""): while it is over its
// login limits the answer is a 429 *Error.
func (s *Service) verifyIDToken(r *http.Request, name, raw string) (*Identity, error) {
	if s.oidc == nil {
		return nil, errors.New("no OIDC issuer is configured")
	}
	key := sha256.Sum256([]byte("oidc\x00" + raw))
	if id := s.cached(key); id != nil {
		return id, nil
	}
	var (
		id      *Identity
		expires time.Time
		err     error
	)
	if lerr := s.attempt(r, name, "", func() bool {
		id, expires, err = s.oidc.Verify(r.Context(), raw)
		return err == nil
	}); lerr != nil {
		return nil, lerr
	}
	if err != nil {
		s.metrics.failures.WithLabelValues("invalid_id_token").Inc()
		s.auditFailed(r, "invalid_id_token", "")
		s.log.Warn().Err(err).Str("remote", r.RemoteAddr).Str("reason", "invalid_id_token").Msg("authentication failed")
		return nil, err
	}
	id.Grants = s.withAnonymous(id.Grants)
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
	id := &Identity{Name: c.Subject, Kind: KindToken, Grants: tokenGrants{access: c.Access, kind: c.Kind, anonymous: s.anonymous}}
	if slices.ContainsFunc(c.Access, func(a access) bool { return a.Type == "registry" && a.Name == "catalog" }) {
		if g := s.subjectGrants(context.Background(), c.Kind, c.Subject); g != nil {
			id.Lists = listGrants{g}
		}
	}
	s.remember(key, id, c.ExpiresAt.Time)
	return id, nil
}

// forget drops every cached check, so a revoked credential stops working
// at once.
func (s *Service) forget() {
	s.mu.Lock()
	clear(s.cache)
	s.mu.Unlock()
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
