package registry

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/mirror"
	"github.com/nora-registry/nora/storage"
)

// handler serves the OCI distribution API over a Store.
type handler struct {
	store *storage.Store
	log   zerolog.Logger
	// access logs the lines of requests answered below 500; nil: log.
	access  *zerolog.Logger
	metrics *metrics             // nil when metrics are off
	authz   auth.Authorizer      // nil when the registry is open
	mirror  *mirror.Mirror       // nil without upstreams
	audit   *storage.AuditWriter // nil: pushes and deletes are not recorded
	// partial accepts indexes some of whose platforms are missing.
	partial bool
	others  []mounted // served next to the API (WithHandler)
}

// identityKey is the context key of the caller's *auth.Identity.
type identityKey struct{}

// canPull reports whether the request's caller may pull repo. Without an
// Authorizer every caller may.
func (h *handler) canPull(r *http.Request, repo string) bool {
	if h.authz == nil {
		return true
	}
	id, _ := r.Context().Value(identityKey{}).(*auth.Identity)
	return id != nil && h.authz.Authorize(r, id, repo, auth.ActionPull) == nil
}

// grantsPull reports, without logging, whether the request's caller may
// pull repo: the quiet check for listings and searches that ask about
// many repositories, where a log line and a denial metric per repository
// would cost what exists rather than what the caller can see. A single
// decision the caller asked for goes through canPull.
func (h *handler) grantsPull(r *http.Request, repo string) bool {
	if h.authz == nil {
		return true
	}
	id, _ := r.Context().Value(identityKey{}).(*auth.Identity)
	return id != nil && id.Grants != nil && id.Grants.Allows(repo, auth.ActionPull)
}

// lists reports whether the catalog may name repo to the request's
// caller (see auth.Identity.CatalogGrants).
func (h *handler) lists(r *http.Request, repo string) bool {
	if h.authz == nil {
		return true
	}
	id, _ := r.Context().Value(identityKey{}).(*auth.Identity)
	if id == nil {
		return false
	}
	g := id.CatalogGrants()
	return g != nil && g.Allows(repo, auth.ActionPull)
}

// WithAuthorizer makes every request prove its identity and rights to a.
// Without it the registry is open to all.
func WithAuthorizer(a auth.Authorizer) Option { return func(h *handler) { h.authz = a } }

// WithPartialIndexes accepts an index pushed without some of its child
// manifests, as replication with chosen platforms pushes it; a pull of a
// missing platform then gets MANIFEST_UNKNOWN. It is for the handler of
// the admin socket, which only the registry's own commands reach: a push
// from a client over the network is held to the spec and refused.
func WithPartialIndexes() Option { return func(h *handler) { h.partial = true } }

// WithMirror serves the names m routes to an upstream as a pull-through
// cache. A nil m leaves the mirror off.
func WithMirror(m *mirror.Mirror) Option {
	return func(h *handler) {
		if m != nil {
			m.UseParser(parseManifest)
		}
		h.mirror = m
	}
}

// Option configures New.
type Option func(*handler)

// WithLogger sets the logger for access and error logs. The default
// discards everything.
func WithLogger(l zerolog.Logger) Option { return func(h *handler) { h.log = l } }

// WithAccessLog sets the logger of the access lines of requests answered
// below 500, which are info events; by default they go to WithLogger's.
// The line of a 5xx answer is a warning on WithLogger's logger whatever
// this says, so a server that leaves out its access lines (as an SD card
// or a busy mirror may want) still reports its failures.
func WithAccessLog(l zerolog.Logger) Option { return func(h *handler) { h.access = &l } }

// WithMetrics registers the registry's Prometheus metrics with reg.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(h *handler) { h.metrics = newMetrics(reg, h.store) }
}

// New returns the registry's HTTP handler: the /v2/ API, /healthz and
// /readyz, wrapped in request ids, access logs and metrics.
func New(store *storage.Store, opts ...Option) http.Handler {
	h := &handler{store: store, log: zerolog.Nop()}
	for _, o := range opts {
		o(h)
	}
	return h.observe(h.routes())
}
