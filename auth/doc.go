// Package auth owns identities (users, robot tokens, OIDC-federated CI
// jobs, anonymous callers), their permissions as glob RBAC rules, the
// Docker token service, OIDC token exchange and rate limits.
//
// The registry sees it through Authorizer: Authenticate once per request,
// Authorize per repository and action. Deny by default: no rule, no access.
// What anonymous callers may do is part of every identity's Grants, so
// Identity.Grants.Allows alone answers for any caller (the catalog filters
// with it); a deny wins within its own set of rules, and never takes away
// an anonymous right.
package auth
