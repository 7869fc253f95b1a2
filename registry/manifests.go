package registry

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// getManifest serves GET and HEAD by tag or digest.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
func (h *handler) getManifest(w http.ResponseWriter, r *http.Request) error {
	name, ref := r.PathValue("name"), r.PathValue("reference")
	var m storage.Manifest
	var err error
	rt, mirrored := mirrorRoute(r)
	switch {
	case mirrored:
		var stale bool
		m, stale, err = h.mirror.Manifest(r.Context(), rt, ref)
		if stale {
			w.Header().Set("Warning", `110 - "response is stale"`)
		}
	case r.Method == http.MethodHead:
		m, err = h.store.StatManifest(r.Context(), name, ref)
	default:
		m, err = h.store.GetManifestShared(r.Context(), name, ref)
	}
	if err != nil {
		return err
	}
	// A digest names exact bytes; only a tag is negotiated.
	if !strings.ContainsRune(ref, ':') && !acceptable(r.Header.Values("Accept"), m.MediaType) {
		return apiError(CodeManifestUnknown, "manifest is "+m.MediaType+", which the request's Accept header excludes")
	}
	hd := w.Header()
	hd.Set("Content-Type", m.MediaType)
	hd.Set("Docker-Content-Digest", string(m.Digest))
	hd.Set("Etag", `"`+string(m.Digest)+`"`)
	if r.Method == http.MethodHead {
		hd.Set("Content-Length", strconv.FormatInt(m.Size, 10))
		return nil
	}
	hd.Set("Content-Length", strconv.Itoa(len(m.Content)))
	h.store.RecordPull(r.Context(), name, m.Digest)
	w.Write(m.Content)
	return nil
}

// acceptable reports whether a manifest of mediaType may answer a request
// with these Accept headers. No Accept header, or a wildcard, takes any.
func acceptable(accept []string, mediaType string) bool {
	if len(accept) == 0 {
		return true
	}
	for _, h := range accept {
		if strings.Contains(h, mediaType) || strings.Contains(h, "*/*") {
			return true // the common case, without parsing
		}
		for part := range strings.SplitSeq(h, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if mt == mediaType || mt == "*/*" || mt == "application/*" || mt == "application/json" {
				return true
			}
		}
	}
	return false
}

// putManifest stores a manifest by tag or digest, with optional ?tag=
// parameters naming more tags.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests
func (h *handler) putManifest(w http.ResponseWriter, r *http.Request) error {
	name, ref := r.PathValue("name"), r.PathValue("reference")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxManifestSize))
	var tooBig *http.MaxBytesError
	if err != nil && !errors.As(err, &tooBig) {
		// Broken chunk framing, a stalled or vanished client: the body
		// did not arrive, which is the client's fault, not the server's.
		return apiError(CodeManifestInvalid, "reading the manifest body: "+err.Error())
	}
	if err != nil {
		return err
	}
	m, err := parseManifest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	var want digest.Digest
	var tags []string
	if strings.ContainsRune(ref, ':') {
		want = digest.Digest(ref)
	} else {
		tags = append(tags, ref)
	}
	for _, t := range r.URL.Query()["tag"] {
		if !validTag(t) {
			return apiError(CodeTagInvalid, "invalid tag "+quote(t))
		}
		tags = append(tags, t)
	}
	m.Digest = manifestDigest(body, want)
	if want != "" && m.Digest != want {
		return apiError(CodeDigestInvalid, "manifest digest is "+string(m.Digest)+", not "+string(want))
	}
	m.Content = body
	put := h.store.PutManifest
	if h.partial && len(m.Manifests) > 0 {
		put = h.store.PutPartialIndex
	}
	if err := put(r.Context(), name, m, tags); err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Location", "/v2/"+name+"/manifests/"+string(m.Digest))
	hd.Set("Docker-Content-Digest", string(m.Digest))
	if m.Subject != "" {
		hd.Set("OCI-Subject", string(m.Subject))
	}
	for _, t := range tags {
		if t != ref {
			hd.Add("OCI-Tag", t)
		}
	}
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// deleteManifest deletes a manifest by digest, or only a tag by tag.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#deleting-manifests
func (h *handler) deleteManifest(w http.ResponseWriter, r *http.Request) error {
	name, ref := r.PathValue("name"), r.PathValue("reference")
	var err error
	if strings.ContainsRune(ref, ':') {
		err = h.store.DeleteManifest(r.Context(), name, digest.Digest(ref))
	} else {
		err = h.store.DeleteTag(r.Context(), name, ref)
	}
	if errors.Is(err, storage.ErrRepositoryNotFound) {
		err = apiError(CodeManifestUnknown, "manifest unknown")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
