package registry

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/mirror"
)

// mirrorKey is the context key of a request's mirror.Route.
type mirrorKey struct{}

// routeMirror renames a request for a name the mirror routes upstream to
// the name its cache uses, before authorization, so RBAC sees that name.
// It edits r in place, as names does.
func (h *handler) routeMirror(r *http.Request, ap *apiPath) {
	if h.mirror == nil {
		return
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	rt, ok := h.mirror.Route(r.Context(), ap.name, r.URL.Query().Get("ns"), read)
	if !ok || !validName(rt.Local) {
		return
	}
	ap.name = rt.Local
	*r = *r.WithContext(context.WithValue(r.Context(), mirrorKey{}, rt))
}

// mirrorRoute returns the request's upstream route, if the mirror gave it one.
func mirrorRoute(r *http.Request) (mirror.Route, bool) {
	rt, ok := r.Context().Value(mirrorKey{}).(mirror.Route)
	return rt, ok
}

// fetchBlob brings a cold blob of a mirrored repository into the cache. A
// blob the cache holds for another repository is linked once upstream
// confirms this one has it, then served from the cache. Otherwise a plain
// GET streams it to the client while it is cached and reports done; a
// Range request waits for the whole blob, then is served from the cache
// like any local blob. A HEAD is answered from a HEAD upstream, done,
// without fetching the blob; only if the upstream gives no size does it
// wait for the whole blob too.
func (h *handler) fetchBlob(w http.ResponseWriter, r *http.Request, rt mirror.Route, d digest.Digest) (done bool, err error) {
	if linked, err := h.mirror.Reuse(r.Context(), rt, d); linked || err != nil {
		return false, err
	}
	if r.Method == http.MethodHead {
		size, err := h.mirror.BlobSize(r.Context(), rt, d)
		if err != nil {
			return false, err
		}
		if size >= 0 {
			blobHeaders(w.Header(), d, size)
			return true, nil
		}
	}
	var send func(int64) io.Writer
	if r.Method == http.MethodGet && r.Header.Get("Range") == "" {
		send = func(size int64) io.Writer {
			blobHeaders(w.Header(), d, size)
			w.WriteHeader(http.StatusOK)
			return w
		}
	}
	sent, err := h.mirror.Blob(r.Context(), rt, d, send)
	if sent && err != nil {
		// The status line is out: only a cut connection tells the
		// client its blob is incomplete.
		panic(http.ErrAbortHandler)
	}
	return sent, err
}

// blobHeaders sets the headers of a blob response of length bytes (-1 if
// unknown).
func blobHeaders(hd http.Header, d digest.Digest, length int64) {
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Docker-Content-Digest", string(d))
	hd.Set("Etag", `"`+string(d)+`"`)
	hd.Set("Accept-Ranges", "bytes")
	if length >= 0 {
		hd.Set("Content-Length", strconv.FormatInt(length, 10))
	}
}
