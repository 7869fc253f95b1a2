package ui

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/replicate"
	"github.com/nora-registry/nora/storage"
)

// Authenticator is what the dashboard needs of the registry's auth:
// auth.Service is one.
type Authenticator interface {
	// Authenticate checks a request's Bearer or Basic credentials, or
	// returns the anonymous identity without them.
	Authenticate(r *http.Request) (*auth.Identity, error)
	// Subject returns a user's or robot's identity now, with the
	// generation of its credentials.
	Subject(ctx context.Context, kind auth.Kind, name string) (*auth.Identity, string, bool)
}

// Handler serves the dashboard under /ui/ and the API under /api/v1/.
type Handler struct {
	store    *storage.Store
	auth     Authenticator // nil: auth is off, everything is visible
	sessions *sessions
	robots   auth.RobotAdmin // nil: no robot tokens page
	maint    Maintenance     // nil: no GC and retention page
	started  time.Time
	log      zerolog.Logger
	stats    *statsCache
	audit    *storage.AuditWriter // nil: logins are not recorded
	// mirrorHits and replStatus feed the overview; nil when off.
	mirrorHits func() (hits, misses uint64)
	replStatus func() []replicate.RemoteStatus
	mux        *http.ServeMux
}

// Option configures a Handler.
type Option func(*Handler)

// WithAuth makes callers authenticate with a, as on /v2/.
func WithAuth(a Authenticator) Option { return func(h *Handler) { h.auth = a } }

// WithStarted sets when the server started, for the uptime shown.
func WithStarted(t time.Time) Option { return func(h *Handler) { h.started = t } }

// WithAudit records dashboard logins in w.
func WithAudit(w *storage.AuditWriter) Option { return func(h *Handler) { h.audit = w } }

// WithLogger logs failures to log.
func WithLogger(log zerolog.Logger) Option { return func(h *Handler) { h.log = log } }

// New returns the dashboard over store. Session keys live in dataDir.
func New(cfg Config, store *storage.Store, dataDir string, opts ...Option) (*Handler, error) {
	se, err := openSessions(dataDir, cfg.sessionLifetime())
	if err != nil {
		return nil, err
	}
	h := &Handler{store: store, sessions: se, started: time.Now(), log: zerolog.Nop()}
	for _, o := range opts {
		o(h)
	}
	h.stats = &statsCache{store: store}
	h.mux = h.routes()
	return h, nil
}

// Patterns are the ServeMux patterns the dashboard answers: / (a
// redirect to /ui/), /ui/… and /api/v1/….
var Patterns = []string{"/{$}", "/ui", "/ui/", "/api/v1/"}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.mux.ServeHTTP(w, r)
}

// caller is who a request comes from.
type caller struct {
	id      *auth.Identity
	session *session // nil unless authenticated by the session cookie
}

// open is everyone's identity while auth is off.
var open = &auth.Identity{Kind: auth.KindAnonymous, Grants: allowAll{}}

type allowAll struct{}

func (allowAll) Allows(string, auth.Action) bool { return true }

// IsAdmin makes everyone an admin while auth is off.
func (allowAll) IsAdmin() bool { return true }

// identify returns the caller: from the Authorization header if there is
// one (wrong credentials fail), else from a valid session cookie whose
// user or robot still has the same credentials, else anonymous.
func (h *Handler) identify(r *http.Request) (caller, error) {
	if h.auth == nil {
		return caller{id: open}, nil
	}
	if r.Header.Get("Authorization") == "" {
		if se, ok := h.sessions.read(r); ok {
			id, gen, ok := h.auth.Subject(r.Context(), se.Kind, se.Name)
			if ok && gen == se.Gen {
				return caller{id: id, session: se}, nil
			}
		}
	}
	id, err := h.auth.Authenticate(r)
	return caller{id: id}, err
}

// loggedIn reports whether the caller proved who they are.
func (c caller) loggedIn() bool { return c.id.Kind != auth.KindAnonymous }

// mayPull returns nil if c may pull repo, else UNAUTHORIZED for an
// anonymous caller (logging in may help) or DENIED.
func (c caller) mayPull(repo string) error {
	return c.may(repo, auth.ActionPull)
}

// may returns nil if c may do action on repo, else an error as mayPull's.
func (c caller) may(repo string, action auth.Action) error {
	if c.id.Grants != nil && c.id.Grants.Allows(repo, action) {
		return nil
	}
	if !c.loggedIn() {
		return apiError(registry.CodeUnauthorized, "authentication required")
	}
	return apiError(registry.CodeDenied, "requested access to the resource is denied")
}

// mayList reports whether c's listings include repo.
func (c caller) mayList(repo string) bool {
	g := c.id.CatalogGrants()
	return g != nil && g.Allows(repo, auth.ActionPull)
}
