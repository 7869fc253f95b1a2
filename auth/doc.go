// Package auth owns identities (users, robot tokens, OIDC-federated CI
// jobs, anonymous callers), their permissions as glob RBAC rules, the
// Docker token service, OIDC token exchange and rate limits.
//
// The registry sees it through Authorizer: Authenticate once per request,
// Authorize per repository and action. Deny by default: no rule, no access.
package auth
