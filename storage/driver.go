package storage

import (
	"context"
	"io"
)

// Driver stores blob bytes under slash-separated keys such as
// "blobs/sha256/ab/ab12…" or "uploads/<id>". It knows nothing of digests,
// repositories or metadata, and makes no filesystem assumptions: an object
// store can implement it. Keys are produced by Store, never by clients.
type Driver interface {
	// Reader opens key for reading from offset. It returns ErrNotFound
	// if key does not exist. The caller closes the reader.
	Reader(ctx context.Context, key string, offset int64) (io.ReadCloser, error)
	// Stat returns the size of key, or ErrNotFound.
	Stat(ctx context.Context, key string) (int64, error)
	// Writer opens key for writing at offset, creating it when offset is
	// 0 and discarding anything stored beyond offset. Bytes become durable
	// only when Commit returns nil.
	Writer(ctx context.Context, key string, offset int64) (Writer, error)
	// Move renames from to to, replacing to. It returns ErrNotFound if
	// from does not exist. Readers of to see either the old or the new
	// object, never a partial one.
	Move(ctx context.Context, from, to string) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Walk calls fn for every key under prefix, in no particular order.
	Walk(ctx context.Context, prefix string, fn func(key string, size int64) error) error
}

// Writer appends to one key opened by Driver.Writer.
type Writer interface {
	io.Writer
	// Commit makes every byte written so far durable and closes the
	// writer.
	Commit() error
	// Close releases the writer. After Commit it does nothing; without
	// Commit, written bytes may or may not persist.
	Close() error
}

// Redirector is implemented by drivers whose objects clients can fetch
// directly, such as S3 with presigned URLs.
type Redirector interface {
	// RedirectURL returns a URL serving key for a limited time, or ""
	// when redirects are off.
	RedirectURL(ctx context.Context, key string) (string, error)
}

// SizedWriter is implemented by drivers that store a write better when its
// length is known before its bytes: S3 streams it as one object, where an
// unknown length must go up in parts.
type SizedWriter interface {
	// SizedWriter is Writer for exactly size bytes. If fewer are
	// written, Commit fails and key keeps what it held before.
	SizedWriter(ctx context.Context, key string, offset, size int64) (Writer, error)
}
