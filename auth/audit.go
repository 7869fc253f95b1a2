package auth

import (
	"net/http"
	"strings"

	"github.com/nora-registry/nora/storage"
)

// WithAudit records in w the tokens granted, the credentials refused and
// the actions denied, as the log does and with no more than it: never a
// credential, and never a user name that is no configured user's.
func WithAudit(w *storage.AuditWriter) Option { return func(s *Service) { s.audit = w } }

// auditFailed records refused credentials; name is kept only if it is a
// configured user's.
func (s *Service) auditFailed(r *http.Request, reason, name string) {
	if s.audit == nil {
		return
	}
	e := storage.AuditEntry{Kind: storage.AuditFailed, Remote: r.RemoteAddr, Detail: reason}
	if s.users[name] != nil {
		e.Identity, e.IdentityKind = name, string(KindUser)
	}
	s.audit.Record(e)
}

func (s *Service) auditDenied(r *http.Request, id *Identity, repo string, action Action) {
	name, kind := id.Who()
	s.audit.Record(storage.AuditEntry{Kind: storage.AuditDenied, Identity: name, IdentityKind: string(kind),
		Repository: repo, Remote: r.RemoteAddr, Detail: string(action)})
}

// auditToken records a token granted to a user, robot or OIDC subject.
// Anonymous grants are not recorded: every anonymous pull asks for one,
// and they would push what matters out of the bounded record.
func (s *Service) auditToken(r *http.Request, id *Identity, scopes []string) {
	if id.Kind == KindAnonymous {
		return
	}
	s.audit.Record(storage.AuditEntry{Kind: storage.AuditToken, Identity: id.Name, IdentityKind: string(id.Kind),
		Remote: r.RemoteAddr, Detail: strings.Join(scopes, " ")})
}
