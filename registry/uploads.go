package registry

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

// startUpload opens an upload session, or stores a blob in one request
// (?digest=), or mounts one from another repository (?mount=&from=).
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs
func (h *handler) startUpload(w http.ResponseWriter, r *http.Request) error {
	r = h.asUploader(r)
	name, q := r.PathValue("name"), r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := parseDigest(mount)
		if err != nil {
			return err
		}
		if done, err := h.mount(w, r, name, q.Get("from"), d); done || err != nil {
			return err
		}
	}
	if ds := q.Get("digest"); ds != "" {
		d, err := parseDigest(ds)
		if err != nil {
			return err
		}
		if _, err := h.store.PutBlob(r.Context(), name, d, r.ContentLength, bodyReader{r.Body}); err != nil {
			return err
		}
		return blobCreated(w, name, d)
	}
	alg := digest.Algorithm(q.Get("digest-algorithm"))
	if alg != "" && alg != digest.SHA256 && alg != digest.SHA512 {
		return apiError(CodeDigestInvalid, "unsupported digest algorithm "+quote(string(alg)))
	}
	up, err := h.store.StartUpload(r.Context(), name, alg)
	if err != nil {
		return err
	}
	return uploadAccepted(w, http.StatusAccepted, up)
}

// mount links d from repository from when that repository has it. Without
// from, d comes from any repository the caller may pull: a digest alone
// never grants access to a blob the caller could not read. done is false
// when the client should fall back to an upload.
func (h *handler) mount(w http.ResponseWriter, r *http.Request, name, from string, d digest.Digest) (done bool, err error) {
	switch {
	case from == "":
		denied := 0
		_, err = h.store.MountAnyBlob(r.Context(), name, d, func(repo string) bool {
			ok := h.grantsPull(r, repo)
			if !ok {
				denied++
			}
			return ok
		})
		if denied > 0 {
			requestLog(w, r).Debug().Str("repository", name).Str("digest", string(d)).Int("denied", denied).
				Msg("mount skipped repositories the caller cannot pull")
		}
	case !validName(from):
		return false, apiError(CodeNameInvalid, "invalid repository name "+quote(from))
	case !h.canPull(r, from):
		return false, nil // a mount must not reveal what the caller cannot read
	default:
		_, err = h.store.MountBlob(r.Context(), from, name, d)
	}
	if errors.Is(err, storage.ErrBlobNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, blobCreated(w, name, d)
}

// asUploader returns r with its caller named as the uploader in its
// context: an upload session belongs to the identity that opened it, and
// counts against that identity's cap (an anonymous caller's, against its
// address's).
func (h *handler) asUploader(r *http.Request) *http.Request {
	id, _ := r.Context().Value(identityKey{}).(*auth.Identity)
	u := storage.Uploader{Owner: string(auth.KindAnonymous)}
	if id != nil && id.Kind != auth.KindAnonymous {
		u.Owner = string(id.Kind) + ":" + id.Name
		u.Client = u.Owner
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		u.Client = "anonymous@" + host
	} else {
		u.Client = "anonymous@" + r.RemoteAddr
	}
	return r.WithContext(storage.WithUploader(r.Context(), u))
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) error {
	hd := w.Header()
	hd.Set("Location", "/v2/"+name+"/blobs/"+string(d))
	hd.Set("Docker-Content-Digest", string(d))
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func uploadAccepted(w http.ResponseWriter, status int, up storage.Upload) error {
	hd := w.Header()
	hd.Set("Location", "/v2/"+up.Repo+"/blobs/uploads/"+up.ID)
	hd.Set("Range", uploadRange(up.Offset))
	hd.Set("Docker-Upload-UUID", up.ID)
	hd.Set("Content-Length", "0")
	w.WriteHeader(status)
	return nil
}

// uploadRange is the Range header of an upload holding n bytes.
func uploadRange(n int64) string {
	return "0-" + strconv.FormatInt(max(n-1, 0), 10)
}

// getUpload reports how much of an upload the registry holds.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-a-blob-in-chunks
func (h *handler) getUpload(w http.ResponseWriter, r *http.Request) error {
	r = h.asUploader(r)
	up, err := h.store.GetUpload(r.Context(), r.PathValue("name"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return uploadAccepted(w, http.StatusNoContent, up)
}

// patchUpload appends a chunk. With Content-Range, the chunk must start
// where the upload ends; without, the body is streamed onto the end.
func (h *handler) patchUpload(w http.ResponseWriter, r *http.Request) error {
	r = h.asUploader(r)
	up, err := h.appendChunk(r)
	if err != nil {
		return err
	}
	return uploadAccepted(w, http.StatusAccepted, up)
}

// appendChunk writes the request body to the upload named in the path.
func (h *handler) appendChunk(r *http.Request) (storage.Upload, error) {
	name, id := r.PathValue("name"), r.PathValue("id")
	offset, body := int64(-1), io.Reader(bodyReader{r.Body})
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, ok := parseContentRange(cr)
		if !ok {
			return storage.Upload{}, apiError(CodeBlobUploadInvalid, "malformed Content-Range "+quote(cr))
		}
		if r.ContentLength >= 0 && r.ContentLength != end-start+1 {
			return storage.Upload{}, apiError(CodeSizeInvalid, "Content-Length does not match Content-Range")
		}
		offset, body = start, io.LimitReader(body, end-start+1)
	}
	up, err := h.store.AppendUploadSized(r.Context(), name, id, offset, r.ContentLength, body)
	if errors.Is(err, storage.ErrUploadOffset) {
		cur, gerr := h.store.GetUpload(r.Context(), name, id)
		if gerr != nil {
			return up, gerr
		}
		return up, &Error{Code: CodeRangeInvalid, Message: err.Error(), Header: http.Header{
			"Location": {"/v2/" + name + "/blobs/uploads/" + id},
			"Range":    {uploadRange(cur.Offset)},
		}}
	}
	return up, err
}

// parseContentRange parses "start-end", also with a "bytes " or "bytes="
// prefix as some clients send.
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "bytes "), "bytes=")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// putUpload finishes an upload, with an optional last chunk, and verifies
// the digest before the blob becomes visible.
func (h *handler) putUpload(w http.ResponseWriter, r *http.Request) error {
	r = h.asUploader(r)
	name, id := r.PathValue("name"), r.PathValue("id")
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		return apiError(CodeDigestInvalid, "digest parameter is required")
	}
	d, err := parseDigest(ds)
	if err != nil {
		return err
	}
	switch {
	case r.ContentLength != 0 && r.Header.Get("Content-Range") == "":
		// The whole blob may come in this request, as containerd and
		// oras send it: the store can then skip the upload file.
		if _, err := h.store.FinishUpload(r.Context(), name, id, d, r.ContentLength, bodyReader{r.Body}); err != nil {
			return err
		}
		return blobCreated(w, name, d)
	case r.ContentLength != 0:
		if _, err := h.appendChunk(r); err != nil {
			return err
		}
	}
	if _, err := h.store.CommitUpload(r.Context(), name, id, d); err != nil {
		return err
	}
	return blobCreated(w, name, d)
}

// deleteUpload cancels an upload.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#canceling-a-blob-upload
func (h *handler) deleteUpload(w http.ResponseWriter, r *http.Request) error {
	r = h.asUploader(r)
	if err := h.store.CancelUpload(r.Context(), r.PathValue("name"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// bodyReader marks a failure to read the request body (a client gone, a
// truncated body) as the client's error, not the registry's.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &Error{Code: CodeBlobUploadInvalid, Message: "reading request body: " + err.Error()}
	}
	return n, err
}
