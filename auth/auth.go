package auth

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Action is what a caller wants to do to a repository.
type Action string

// The actions of permission strings and token scopes.
const (
	ActionPull   Action = "pull"
	ActionPush   Action = "push"
	ActionDelete Action = "delete"
	ActionAll    Action = "*"
	// ActionAdmin, in permission strings only (`admin:*`), opens the
	// dashboard's admin pages: GC, retention, robot tokens. It is not a
	// repository action: no scope asks for it and no token carries it.
	ActionAdmin Action = "admin"
)

// Kind says how an identity was established.
type Kind string

// Identity kinds.
const (
	KindAnonymous Kind = "anonymous"
	KindUser      Kind = "user"
	KindRobot     Kind = "robot"
	KindOIDC      Kind = "oidc"
	KindToken     Kind = "token" // a registry-issued bearer token
)

// Identity is who a request comes from and what it was granted.
type Identity struct {
	// Name is the user or robot name, the OIDC subject, or "" for
	// anonymous callers.
	Name string
	Kind Kind
	// Groups the user belongs to, for the audit log.
	Groups []string
	// Grants decides what the identity may do, completely: what
	// anonymous callers may do is part of every identity's grants, so
	// Grants.Allows alone answers for any identity. For a bearer token
	// it is the token's access claim and the anonymous rights, never
	// more.
	Grants Grants
	// Lists, if not nil, replaces Grants for what the catalog may list:
	// a bearer token granted the scope registry:catalog:* lists what its
	// user or robot may pull, though it authorizes no pull itself.
	Lists Grants
}

// CatalogGrants is what the catalog may list for the identity.
func (id *Identity) CatalogGrants() Grants {
	if id.Lists != nil {
		return id.Lists
	}
	return id.Grants
}

// Grants answers whether an action on a repository is allowed.
type Grants interface {
	Allows(repo string, action Action) bool
}

// IsAdmin reports whether g holds the admin permission. Grants that do not
// say (a bearer token's) never do.
func IsAdmin(g Grants) bool {
	a, ok := g.(interface{ IsAdmin() bool })
	return ok && a.IsAdmin()
}

// eitherGrants allows what any of its sets allows. Each set keeps its own
// denies: a user's deny never takes away what anonymous callers may do,
// since the user could drop their credentials and do it anyway.
type eitherGrants []Grants

// Allows implements Grants.
func (e eitherGrants) Allows(repo string, action Action) bool {
	for _, g := range e {
		if g != nil && g.Allows(repo, action) {
			return true
		}
	}
	return false
}

// IsAdmin reports whether any of the sets is an admin's.
func (e eitherGrants) IsAdmin() bool {
	for _, g := range e {
		if g != nil && IsAdmin(g) {
			return true
		}
	}
	return false
}

// Authorizer decides who a request comes from and what it may do. The
// registry calls Authenticate once per request and Authorize per
// repository and action it needs.
type Authorizer interface {
	// Authenticate returns the caller's identity from a bearer token,
	// Basic credentials, or none (anonymous). Credentials that are
	// present but wrong return an *Error with status 401.
	Authenticate(r *http.Request) (*Identity, error)
	// Authorize returns nil if id may perform action on repo, else an
	// *Error: 401 with a challenge naming the scope when the caller
	// should authenticate (again), 403 when it is known and denied.
	// repo "" with action "" asks whether id may use the API at all
	// (GET /v2/).
	Authorize(r *http.Request, id *Identity, repo string, action Action) error
}

// Error is an authentication or authorization failure.
type Error struct {
	// Status is 401, 403 or 429.
	Status int
	// Challenge is the WWW-Authenticate value sent with a 401.
	Challenge string
	// RetryAfter is set on a 429.
	RetryAfter time.Duration
	Message    string
}

func (e *Error) Error() string { return e.Message }

// Header returns the response headers the error carries.
func (e *Error) Header() http.Header {
	h := http.Header{}
	if e.Challenge != "" {
		h.Set("WWW-Authenticate", e.Challenge)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	return h
}

// AsError returns err as an *Error, if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
