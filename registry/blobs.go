package registry

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// getBlob serves GET and HEAD of a blob linked to the repository, with a
// single byte range if asked.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs
func (h *handler) getBlob(w http.ResponseWriter, r *http.Request) error {
	name, d := r.PathValue("name"), digest.Digest(r.PathValue("digest"))
	rt, mirrored := mirrorRoute(r)
	if mirrored {
		defer h.mirror.Pulling(rt)()
	}
	info, err := h.store.StatBlob(r.Context(), name, d)
	if mirrored && err == nil {
		h.mirror.CountHit(rt)
	} else if mirrored && errors.Is(err, storage.ErrBlobNotFound) {
		if done, err := h.fetchBlob(w, r, rt, d); done || err != nil {
			return err
		}
		info, err = h.store.StatBlob(r.Context(), name, d)
	}
	if err != nil {
		return err
	}
	hd := w.Header()
	if r.Method == http.MethodGet {
		if u, err := h.store.BlobURL(r.Context(), d); err != nil {
			return err
		} else if u != "" {
			// The object store serves the bytes, Range included.
			hd.Set("Docker-Content-Digest", string(d))
			http.Redirect(w, r, u, http.StatusTemporaryRedirect)
			return nil
		}
	}
	start, length := int64(0), info.Size
	status := http.StatusOK
	if rh := r.Header.Get("Range"); rh != "" && r.Method == http.MethodGet {
		var ok bool
		start, length, ok = parseRange(rh, info.Size)
		if !ok {
			return &Error{Code: CodeRangeInvalid, Message: "range " + quote(rh) + " not satisfiable",
				Header: http.Header{"Content-Range": {fmt.Sprintf("bytes */%d", info.Size)}}}
		}
		if length != info.Size {
			status = http.StatusPartialContent
			hd.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, info.Size))
		}
	}
	blobHeaders(hd, d, length)
	if r.Method == http.MethodHead {
		return nil
	}
	rc, err := h.store.OpenBlob(r.Context(), d, start)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.WriteHeader(status)
	// A LimitedReader over the driver's *os.File still lets net/http use
	// sendfile.
	io.Copy(w, &io.LimitedReader{R: rc, N: length})
	return nil
}

// parseRange parses a single "bytes=" range against size. Multiple ranges
// are not served; ok is false for anything unsatisfiable or malformed.
func parseRange(h string, size int64) (start, length int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.ContainsRune(spec, ',') {
		return 0, 0, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false
	}
	if first == "" { // suffix range: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		n = min(n, size)
		return size - n, n, size > 0
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end := size - 1
	if last != "" {
		if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
			return 0, 0, false
		}
		end = min(end, size-1)
	}
	return start, end - start + 1, true
}

// deleteBlob unlinks a blob from the repository.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#deleting-blobs
func (h *handler) deleteBlob(w http.ResponseWriter, r *http.Request) error {
	if err := h.store.DeleteBlob(r.Context(), r.PathValue("name"), digest.Digest(r.PathValue("digest"))); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
