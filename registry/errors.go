package registry

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/mirror"
	"github.com/nora-registry/nora/storage"
)

// Code is an OCI distribution error code: its wire value, its HTTP status
// and the message sent when the error carries none of its own.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
type Code struct {
	Value   string
	Status  int
	Message string
}

// The OCI error codes, and the few the spec leaves to registries.
var (
	CodeBlobUnknown         = Code{"BLOB_UNKNOWN", http.StatusNotFound, "blob unknown to registry"}
	CodeBlobUploadInvalid   = Code{"BLOB_UPLOAD_INVALID", http.StatusBadRequest, "blob upload invalid"}
	CodeBlobUploadUnknown   = Code{"BLOB_UPLOAD_UNKNOWN", http.StatusNotFound, "blob upload unknown to registry"}
	CodeDigestInvalid       = Code{"DIGEST_INVALID", http.StatusBadRequest, "provided digest did not match uploaded content"}
	CodeManifestBlobUnknown = Code{"MANIFEST_BLOB_UNKNOWN", http.StatusNotFound, "manifest references a manifest or blob unknown to registry"}
	CodeManifestInvalid     = Code{"MANIFEST_INVALID", http.StatusBadRequest, "manifest invalid"}
	CodeManifestUnknown     = Code{"MANIFEST_UNKNOWN", http.StatusNotFound, "manifest unknown to registry"}
	CodeNameInvalid         = Code{"NAME_INVALID", http.StatusBadRequest, "invalid repository name"}
	CodeNameUnknown         = Code{"NAME_UNKNOWN", http.StatusNotFound, "repository name not known to registry"}
	CodeSizeInvalid         = Code{"SIZE_INVALID", http.StatusBadRequest, "provided length did not match content length"}
	CodeUnauthorized        = Code{"UNAUTHORIZED", http.StatusUnauthorized, "authentication required"}
	CodeDenied              = Code{"DENIED", http.StatusForbidden, "requested access to the resource is denied"}
	CodeUnsupported         = Code{"UNSUPPORTED", http.StatusMethodNotAllowed, "the operation is unsupported"}
	CodeTooManyRequests     = Code{"TOOMANYREQUESTS", http.StatusTooManyRequests, "too many requests"}
	// Codes beyond the spec's table, as other registries use them.
	CodeTagInvalid        = Code{"TAG_INVALID", http.StatusBadRequest, "invalid tag"}
	CodeRangeInvalid      = Code{"RANGE_INVALID", http.StatusRequestedRangeNotSatisfiable, "requested range not satisfiable"}
	CodeManifestTooLarge  = Code{"SIZE_INVALID", http.StatusRequestEntityTooLarge, "manifest exceeds the size limit"}
	CodeBlobTooLarge      = Code{"SIZE_INVALID", http.StatusRequestEntityTooLarge, "blob exceeds the size limit"}
	CodePaginationInvalid = Code{"PAGINATION_NUMBER_INVALID", http.StatusBadRequest, "invalid number of results requested"}
	CodeNotFound          = Code{"NOT_FOUND", http.StatusNotFound, "no such endpoint"}
	CodeUnavailable       = Code{"UNAVAILABLE", http.StatusServiceUnavailable, "service unavailable"}
	CodeStorageFull       = Code{"STORAGE_FULL", http.StatusInsufficientStorage, "the registry's storage is full"}
	CodeUnknown           = Code{"UNKNOWN", http.StatusInternalServerError, "unknown error"}
)

// Error is an API error: a code, a message and optional detail.
type Error struct {
	Code    Code
	Message string
	Detail  any
	// Header is set on the response, e.g. Range on a 416.
	Header http.Header
}

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Code.Value + ": " + e.Message
	}
	return e.Code.Value + ": " + e.Code.Message
}

// apiError returns an Error with code and message.
func apiError(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// storageCodes maps storage sentinels to the codes clients see.
var storageCodes = []struct {
	err  error
	code Code
}{
	{storage.ErrBlobNotFound, CodeBlobUnknown},
	{storage.ErrUploadNotFound, CodeBlobUploadUnknown},
	{storage.ErrUploadOffset, CodeRangeInvalid},
	{storage.ErrDigestMismatch, CodeDigestInvalid},
	{storage.ErrDigestInvalid, CodeDigestInvalid},
	{storage.ErrSizeMismatch, CodeSizeInvalid},
	{storage.ErrManifestNotFound, CodeManifestUnknown},
	{storage.ErrManifestBlobUnknown, CodeManifestBlobUnknown},
	{storage.ErrRepositoryNotFound, CodeNameUnknown},
	{storage.ErrUnavailable, CodeUnavailable},
	{mirror.ErrUpstreamUnavailable, CodeUnavailable},
	{storage.ErrTooManyUploads, CodeTooManyRequests},
	{storage.ErrBlobTooLarge, CodeBlobTooLarge},
	// Its code's message only: the error names files of the data directory.
	{storage.ErrStorageFull, CodeStorageFull},
}

// asError turns any handler error into an Error.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for _, m := range storageCodes {
		// Not the error's text, which names files of the data directory
		// or the upstream's address: the code's message, or the
		// sentinel's, which tells the client the upstream failed.
		if errors.Is(err, m.err) && m.code == CodeStorageFull {
			return &Error{Code: m.code}
		}
		if errors.Is(err, m.err) && m.err == mirror.ErrUpstreamUnavailable {
			return &Error{Code: m.code, Message: m.err.Error()}
		}
		if errors.Is(err, m.err) {
			return &Error{Code: m.code, Message: err.Error()}
		}
	}
	if ae, ok := auth.AsError(err); ok {
		code := CodeUnauthorized
		switch ae.Status {
		case http.StatusForbidden:
			code = CodeDenied
		case http.StatusTooManyRequests:
			code = CodeTooManyRequests
		}
		return &Error{Code: code, Message: ae.Message, Header: ae.Header()}
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &Error{Code: CodeManifestTooLarge, Message: "request body exceeds " + strconv.FormatInt(tooBig.Limit, 10) + " bytes"}
	}
	return &Error{Code: CodeUnknown, Message: "internal error"}
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError writes err as the OCI error envelope with its code's status.
// Errors the client did not cause are logged; their detail is not sent.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if e.Code.Status >= 500 {
		requestLog(w, r).Error().Err(err).Msg("request failed")
	}
	msg := e.Message
	if msg == "" {
		msg = e.Code.Message
	}
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.Code.Value, Message: msg, Detail: e.Detail}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Code.Status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
