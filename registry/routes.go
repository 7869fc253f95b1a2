package registry

import (
	"context"
	"net/http"
	"strings"

	"github.com/nora-registry/nora/auth"
)

// routes declares the API, one line per endpoint.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#endpoints
func (h *handler) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v2/{$}", h.wrap(actionAPI, h.base))
	mux.Handle("GET /v2/_catalog", h.wrap(actionAPI, h.catalog))
	mux.Handle(getManifestPattern, h.wrap(auth.ActionPull, h.getManifest))
	mux.Handle("PUT /v2/{name}/manifests/{reference}", h.wrap(auth.ActionPush, h.putManifest))
	mux.Handle("DELETE /v2/{name}/manifests/{reference}", h.wrap(auth.ActionDelete, h.deleteManifest))
	mux.Handle("GET /v2/{name}/blobs/{digest}", h.wrap(auth.ActionPull, h.getBlob))
	mux.Handle("DELETE /v2/{name}/blobs/{digest}", h.wrap(auth.ActionDelete, h.deleteBlob))
	mux.Handle("POST /v2/{name}/blobs/uploads/{$}", h.wrap(auth.ActionPush, h.startUpload))
	mux.Handle("GET /v2/{name}/blobs/uploads/{id}", h.wrap(auth.ActionPush, h.getUpload))
	mux.Handle("PATCH /v2/{name}/blobs/uploads/{id}", h.wrap(auth.ActionPush, h.patchUpload))
	mux.Handle("PUT /v2/{name}/blobs/uploads/{id}", h.wrap(auth.ActionPush, h.putUpload))
	mux.Handle("DELETE /v2/{name}/blobs/uploads/{id}", h.wrap(auth.ActionPush, h.deleteUpload))
	mux.Handle("GET /v2/{name}/tags/list", h.wrap(auth.ActionPull, h.listTags))
	mux.Handle("GET /v2/{name}/referrers/{digest}", h.wrap(auth.ActionPull, h.referrers))
	mux.Handle("/v2/", h.wrap(actionAPI, h.unsupported))
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	for _, o := range h.others {
		mux.Handle(o.pattern, o.h)
	}
	return h.names(mux)
}

// getManifestPattern is the route of manifest pulls, which names serves
// without ServeMux.
const getManifestPattern = "GET /v2/{name}/manifests/{reference}"

// apiVersion is the value of the Docker-Distribution-Api-Version header.
// The slice is shared by every response: its len and cap are equal, so a
// Header.Add appends to a copy, and net/http never writes into a value.
var apiVersion = []string{"registry/2.0"}

// names lets ServeMux route repository names, which contain slashes: it
// validates the name and reference found from the end of the path and
// hands ServeMux the name as one escaped segment. It edits r in place so
// the caller sees r.Pattern once ServeMux has matched. Manifest pulls, the
// most frequent request, go straight to pullManifest with the pattern
// ServeMux would have set and the name and reference as arguments:
// rewriting the path and matching it cost a third of the allocations of a
// pull, and path values set on a request ServeMux did not match, two more.
func (h *handler) names(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if !strings.HasPrefix(p, "/v2/") {
			mux.ServeHTTP(w, r)
			return
		}
		w.Header()["Docker-Distribution-Api-Version"] = apiVersion
		ap, ok, err := parsePath(p[len("/v2/"):])
		if err != nil {
			writeError(w, r, err)
			return
		}
		if !ok {
			mux.ServeHTTP(w, r)
			return
		}
		name := ap.name
		h.routeMirror(r, &ap)
		if ap.suffix == "/manifests/" && ap.name == name && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			// The path is the client's, unescaped: a valid name and
			// reference contain nothing a client could escape.
			r.Pattern = getManifestPattern
			h.pullManifest(w, r, ap.name, ap.last)
			return
		}
		r.URL.Path, r.URL.RawPath = ap.rewrite()
		mux.ServeHTTP(w, r)
	})
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// actionAPI marks routes that need only the right to use the API; the
// catalog filters repositories itself.
const actionAPI auth.Action = ""

// wrap checks that the caller may perform action on the route's
// repository, then runs f and turns its returned error into the OCI error
// response, so no handler picks a status code for an error by hand.
func (h *handler) wrap(action auth.Action, f handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := h.authorize(w, r, r.PathValue("name"), action)
		if !ok {
			return
		}
		if err := f(w, r); err != nil {
			writeError(w, r, err)
		}
	})
}

// pullManifest is the manifest pull route that names serves without
// ServeMux: wrap's getManifest, given the name and reference.
func (h *handler) pullManifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	r, ok := h.authorize(w, r, name, auth.ActionPull)
	if !ok {
		return
	}
	if err := h.serveManifest(w, r, name, ref); err != nil {
		writeError(w, r, err)
	}
}

// authorize checks that the caller may perform action on repository
// name. If not, it answers the request and returns false; if so, it
// returns r carrying the caller's identity, when the registry has an
// authorizer.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request, name string, action auth.Action) (*http.Request, bool) {
	if h.authz != nil {
		id, err := h.authz.Authenticate(r)
		if err == nil {
			NoteIdentity(w, id) // for the access log and the audit record
			err = h.authz.Authorize(r, id, name, action)
		}
		if err != nil {
			writeError(w, r, err)
			return r, false
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
	}
	if action == auth.ActionPush { // before the context walk, which pulls pay for otherwise
		if rt, ok := mirrorRoute(r); ok && !rt.Upstream.AllowPush {
			writeError(w, r, apiError(CodeDenied, quote(rt.Local)+" is a cache of upstream "+rt.Upstream.Name+", which takes no pushes here"))
			return r, false
		}
	}
	return r, true
}

// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#determining-support
func (h *handler) base(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	if r.Method != http.MethodHead {
		w.Write([]byte("{}"))
	}
	return nil
}

// unsupported answers paths and methods the API does not have.
func (h *handler) unsupported(w http.ResponseWriter, r *http.Request) error {
	if _, ok, _ := parsePath(strings.TrimPrefix(r.URL.EscapedPath(), "/v2/")); ok {
		return apiError(CodeUnsupported, r.Method+" is not supported here")
	}
	return apiError(CodeNotFound, "no such endpoint")
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte("ok\n"))
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if err := h.store.Ready(r.Context()); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}
