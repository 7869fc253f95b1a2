// Package ui is the registry's embedded dashboard and its JSON API.
//
// The dashboard is server-rendered html/template pages under /ui/ with
// every asset embedded (go:embed): no request ever leaves for another
// host. The JSON API under /api/v1/ answers from the same functions the
// pages render, with the registry's error envelope
// ({"errors":[{"code","message"}]}).
//
// It is a view over storage.Store and the registry's own auth: it never
// reads bbolt, and every listing, count and page shows only repositories
// the caller may pull. Callers authenticate as on /v2/ (Bearer tokens from
// /auth/token, Basic) or with a session cookie set by the login form. A
// session names its user or robot and the generation of its credentials
// (auth.Service.Subject): a change of password, rules or token ends it, and
// so does logging out, recorded in the data directory so that a restart
// does not revive it.
//
// Figures of the whole registry (storage over time, the mirror's hit
// ratio, replication) are shown only to callers who may pull every
// repository; the activity feed shows an entry about a repository to
// whoever may pull it, and one about no repository only to the identity
// it names.
//
// Changes (deletes, robot tokens, GC and retention passes) are same-origin
// only and carry the CSRF token of the caller's session, or are API calls
// a browser would preflight. Deletes need the registry's delete permission
// on the repository and go through the store's own delete functions, so
// they are events like a DELETE on /v2/. The admin pages (GC and
// retention, robot tokens) need the admin permission (auth.IsAdmin).
package ui
