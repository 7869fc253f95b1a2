package ui

import (
	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
)

// The admin pages (GC and retention, robot tokens) need the admin
// permission (`admin:*`), which users and robots carry when logged in or
// calling with Basic credentials, never through a token from
// /auth/token. With auth off everyone is an admin, as everyone may do
// anything on /v2/.

// isAdmin reports whether c holds the admin permission.
func (c caller) isAdmin() bool { return auth.IsAdmin(c.id.Grants) }

// mayAdmin returns nil for an admin, else UNAUTHORIZED for an anonymous
// caller or DENIED.
func (c caller) mayAdmin() error {
	if c.isAdmin() {
		return nil
	}
	if !c.loggedIn() {
		return apiError(registry.CodeUnauthorized, "authentication required")
	}
	return apiError(registry.CodeDenied, "this needs the admin permission (admin:*)")
}
