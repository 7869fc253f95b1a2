package registry

import (
	"net/http"
	"strings"
)

// routes declares the API, one line per endpoint.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#endpoints
func (h *handler) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v2/{$}", h.wrap(h.base))
	mux.Handle("GET /v2/_catalog", h.wrap(h.catalog))
	mux.Handle("GET /v2/{name}/manifests/{reference}", h.wrap(h.getManifest))
	mux.Handle("PUT /v2/{name}/manifests/{reference}", h.wrap(h.putManifest))
	mux.Handle("DELETE /v2/{name}/manifests/{reference}", h.wrap(h.deleteManifest))
	mux.Handle("GET /v2/{name}/blobs/{digest}", h.wrap(h.getBlob))
	mux.Handle("DELETE /v2/{name}/blobs/{digest}", h.wrap(h.deleteBlob))
	mux.Handle("POST /v2/{name}/blobs/uploads/{$}", h.wrap(h.startUpload))
	mux.Handle("GET /v2/{name}/blobs/uploads/{id}", h.wrap(h.getUpload))
	mux.Handle("PATCH /v2/{name}/blobs/uploads/{id}", h.wrap(h.patchUpload))
	mux.Handle("PUT /v2/{name}/blobs/uploads/{id}", h.wrap(h.putUpload))
	mux.Handle("DELETE /v2/{name}/blobs/uploads/{id}", h.wrap(h.deleteUpload))
	mux.Handle("GET /v2/{name}/tags/list", h.wrap(h.listTags))
	mux.Handle("GET /v2/{name}/referrers/{digest}", h.wrap(h.referrers))
	mux.Handle("/v2/", h.wrap(h.unsupported))
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	return h.names(mux)
}

// names lets ServeMux route repository names, which contain slashes: it
// validates the name and reference found from the end of the path and
// hands ServeMux the name as one escaped segment. It edits r in place so
// the caller sees r.Pattern once ServeMux has matched.
func (h *handler) names(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if !strings.HasPrefix(p, "/v2/") {
			mux.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		ap, ok, err := parsePath(p[len("/v2/"):])
		if err != nil {
			writeError(w, r, err)
			return
		}
		if ok {
			r.URL.Path, r.URL.RawPath = ap.rewrite()
		}
		mux.ServeHTTP(w, r)
	})
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// wrap turns a handler's returned error into the OCI error response, so no
// handler picks a status code for an error by hand.
func (h *handler) wrap(f handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			writeError(w, r, err)
		}
	})
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
