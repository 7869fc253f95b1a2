package storage

import "errors"

// Driver errors.
var (
	// ErrNotFound means a driver key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable means the blob store did not answer, or answered
	// that it cannot serve now; the request may succeed later.
	ErrUnavailable = errors.New("blob store unavailable")
	// ErrStorageFull means a write failed because the disk, or the
	// quota, of the data directory is full; the request may succeed once
	// GC or an operator freed space.
	ErrStorageFull = errors.New("the registry's storage is full")
)

// Blob errors.
var (
	// ErrBlobNotFound means the blob is not linked to the repository.
	ErrBlobNotFound = errors.New("blob unknown to repository")
	// ErrDigestMismatch means uploaded bytes do not hash to the digest
	// the client named.
	ErrDigestMismatch = errors.New("digest does not match content")
	// ErrSizeMismatch means a declared size does not match the content.
	ErrSizeMismatch = errors.New("size does not match content")
)

// Upload errors.
var (
	// ErrUploadNotFound means no upload session has this id in this
	// repository.
	ErrUploadNotFound = errors.New("blob upload unknown")
	// ErrUploadOffset means a chunk does not start where the upload ends.
	ErrUploadOffset = errors.New("chunk does not start at the upload's offset")
	// ErrTooManyUploads means opening a session would pass the cap on
	// open sessions, in total or of the client.
	ErrTooManyUploads = errors.New("too many open upload sessions")
	// ErrBlobTooLarge means a blob would pass storage.max_blob_size.
	ErrBlobTooLarge = errors.New("blob exceeds the size limit")
)

// Manifest errors.
var (
	// ErrManifestNotFound means no manifest has this tag or digest in
	// the repository.
	ErrManifestNotFound = errors.New("manifest unknown")
	// ErrManifestBlobUnknown means a blob or child manifest the manifest
	// references is not in the repository at commit time.
	ErrManifestBlobUnknown = errors.New("manifest references unknown blob")
	// ErrRepositoryNotFound means the repository holds nothing.
	ErrRepositoryNotFound = errors.New("repository name not known to registry")
)

// Digest errors.
var (
	// ErrDigestInvalid means a digest is malformed or uses an
	// unsupported algorithm.
	ErrDigestInvalid = errors.New("invalid digest")
)
