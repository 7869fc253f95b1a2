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
	return h.serveManifest(w, r, r.PathValue("name"), r.PathValue("reference"))
}

// serveManifest is getManifest for the manifest ref of repository name.
func (h *handler) serveManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
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
	size := int64(len(m.Content))
	if r.Method == http.MethodHead {
		size = m.Size
	}
	setManifestHeaders(w.Header(), m.MediaType, m.Digest, size)
	if r.Method == http.MethodHead {
		return nil
	}
	h.store.RecordPull(r.Context(), name, m.Digest)
	w.Write(m.Content)
	return nil
}

// mediaTypeHeaders holds a shared Content-Type value per manifest media
// type; like apiVersion, each slice has len == cap.
var mediaTypeHeaders = func() map[string][]string {
	m := make(map[string][]string, len(manifestKinds))
	for mt := range manifestKinds {
		m[mt] = []string{mt}
	}
	return m
}()

// setManifestHeaders sets the headers of a manifest response as
// Header.Set would, in two allocations rather than six: the Content-Type
// is shared, the three other values share one array, each a slice with
// len == cap so an Add elsewhere copies rather than overwrites a
// neighbour, and the ETag and length are cut from one string.
func setManifestHeaders(hd http.Header, mediaType string, d digest.Digest, size int64) {
	ct, ok := mediaTypeHeaders[mediaType]
	if !ok {
		ct = []string{mediaType}
	}
	var buf [160]byte // a quoted sha512 digest and 20 digits
	b := append(buf[:0], '"')
	b = append(b, d...)
	b = append(b, '"')
	b = strconv.AppendInt(b, size, 10)
	s := string(b)
	v := &[3]string{string(d), s[:len(d)+2], s[len(d)+2:]}
	hd["Content-Type"] = ct
	hd["Docker-Content-Digest"] = v[0:1:1]
	hd["Etag"] = v[1:2:2]
	hd["Content-Length"] = v[2:3:3]
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
	want, tags, tagErr := pushTags(r, ref)
	d := manifestDigest(body, want)
	if tagErr == nil && (want == "" || d == want) {
		if done, err := h.putHeldManifest(w, r, name, ref, d, tags); done {
			return err
		}
	}
	m, err := parseManifest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	if tagErr != nil {
		return tagErr
	}
	m.Digest = d
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
	writePushed(w, name, ref, m.Digest, m.Subject, tags)
	return nil
}

// putHeldManifest answers the push of manifest d, with valid tags, that
// repository name already holds, as clients send for every further tag
// of an image, without parsing it again: its bytes were parsed when
// first stored, and with a Content-Type equal to the media type that
// parse gave, a parse now would give the same manifest. The store
// records the push and the tags, checking references as for any push.
// It reports false, having written nothing, for another Content-Type or
// a manifest the repository lacks, which the full path then answers.
func (h *handler) putHeldManifest(w http.ResponseWriter, r *http.Request, name, ref string, d digest.Digest, tags []string) (bool, error) {
	mt := r.Header.Get("Content-Type")
	if _, known := manifestKinds[mt]; !known || h.partial {
		return false, nil
	}
	subject, err := h.store.RetagManifest(r.Context(), name, d, mt, tags)
	switch {
	case errors.Is(err, storage.ErrManifestNotFound):
		return false, nil
	case err != nil:
		return true, err
	}
	writePushed(w, name, ref, d, subject, tags)
	return true, nil
}

// pushTags returns what a manifest PUT to reference ref names: the
// digest the manifest must have, if ref is one, and the tags to point at
// it, ref's and those of ?tag= parameters.
func pushTags(r *http.Request, ref string) (want digest.Digest, tags []string, err error) {
	if strings.ContainsRune(ref, ':') {
		want = digest.Digest(ref)
	} else {
		tags = append(tags, ref)
	}
	for _, t := range r.URL.Query()["tag"] {
		if !validTag(t) {
			return "", nil, apiError(CodeTagInvalid, "invalid tag "+quote(t))
		}
		tags = append(tags, t)
	}
	return want, tags, nil
}

// writePushed answers a manifest PUT to ref in repository name that
// stored manifest d, whose subject is subject, and pointed tags at it.
func writePushed(w http.ResponseWriter, name, ref string, d, subject digest.Digest, tags []string) {
	hd := w.Header()
	hd.Set("Location", "/v2/"+name+"/manifests/"+string(d))
	hd.Set("Docker-Content-Digest", string(d))
	if subject != "" {
		hd.Set("OCI-Subject", string(subject))
	}
	for _, t := range tags {
		if t != ref {
			hd.Add("OCI-Tag", t)
		}
	}
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
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
