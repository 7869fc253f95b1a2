package registry

import (
	"net/http"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

// WithAudit records manifest pushes and manifest, tag and blob deletes in
// w, after the response, off the request's path.
func WithAudit(w *storage.AuditWriter) Option { return func(h *handler) { h.audit = w } }

// auditRequest records r if it was a successful push or delete.
// id is the caller wrap authenticated, nil if it did not.
func (h *handler) auditRequest(r *http.Request, route string, status int, hd http.Header, id *auth.Identity) {
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
	if id != nil {
		name, kind := id.Who()
		e.Identity, e.IdentityKind = name, string(kind)
	}
	h.audit.Record(e)
}
