package registry

import (
	"context"
	"net/http"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

// WithAudit records manifest pushes and manifest, tag and blob deletes in
// w, after the response, off the request's path.
func WithAudit(w *storage.AuditWriter) Option { return func(h *handler) { h.audit = w } }

// auditSlotKey is the context key of the request's *auditSlot: observe
// puts one in, and wrap fills it with the identity it authenticated,
// since wrap's request is a copy observe never sees.
type auditSlotKey struct{}

type auditSlot struct{ id *auth.Identity }

// withAuditSlot returns ctx with an empty slot, when auditing.
func (h *handler) withAuditSlot(ctx context.Context, method string) (context.Context, *auditSlot) {
	// Only manifest PUTs and DELETEs are recorded: a pull costs nothing.
	if h.audit == nil || (method != http.MethodPut && method != http.MethodDelete) {
		return ctx, nil
	}
	s := &auditSlot{}
	return context.WithValue(ctx, auditSlotKey{}, s), s
}

// noteIdentity tells the request's audit slot who the caller is.
func noteIdentity(r *http.Request, id *auth.Identity) {
	if s, ok := r.Context().Value(auditSlotKey{}).(*auditSlot); ok {
		s.id = id
	}
}

// auditRequest records r if it was a successful push or delete.
func (h *handler) auditRequest(r *http.Request, route string, status int, hd http.Header, slot *auditSlot) {
	var e storage.AuditEntry
	switch {
	case r.Method == http.MethodPut && route == "/v2/{name}/manifests/{reference}" && status == http.StatusCreated:
		e = storage.AuditEntry{Kind: storage.AuditPush, Reference: r.PathValue("reference"), Digest: hd.Get("Docker-Content-Digest")}
	case r.Method == http.MethodDelete && route == "/v2/{name}/manifests/{reference}" && status == http.StatusAccepted:
		e = storage.AuditEntry{Kind: storage.AuditDelete, Reference: r.PathValue("reference")}
	case r.Method == http.MethodDelete && route == "/v2/{name}/blobs/{digest}" && status == http.StatusAccepted:
		e = storage.AuditEntry{Kind: storage.AuditDelete, Reference: r.PathValue("digest"), Detail: "blob"}
	default:
		return
	}
	e.Repository, e.Remote = r.PathValue("name"), r.RemoteAddr
	e.IdentityKind = string(auth.KindAnonymous)
	if slot != nil && slot.id != nil {
		e.Identity, e.IdentityKind = slot.id.Name, string(slot.id.Kind)
	}
	h.audit.Record(e)
}
