package auth

// Summary counts what a Service enforces, for the server's start-up line.
type Summary struct {
	// Users counts configured and htpasswd users.
	Users int
	// Rules counts [[auth.rules]] entries.
	Rules int
	// OIDCIssuers counts [[auth.oidc]] entries.
	OIDCIssuers int
	// Anonymous is what callers without credentials may do.
	Anonymous []string
}

// Summary returns the counts of s's users, rules and OIDC issuers.
func (s *Service) Summary() Summary {
	return Summary{Users: len(s.users), Rules: len(s.cfg.Rules), OIDCIssuers: len(s.cfg.OIDC), Anonymous: s.cfg.Anonymous}
}

// Who returns the caller behind id, as logs and the audit record name
// it: for a registry-issued bearer token, the user, robot or OIDC
// subject it was issued to, rather than the token.
func (id *Identity) Who() (name string, kind Kind) {
	if g, ok := id.Grants.(tokenGrants); ok && id.Kind == KindToken && g.kind != "" {
		return id.Name, g.kind
	}
	return id.Name, id.Kind
}
