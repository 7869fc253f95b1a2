package mirror

import "time"

// SetBlobIdleTimeout sets the blob idle timeout of Mirrors made after it,
// and returns the function that restores it.
func SetBlobIdleTimeout(d time.Duration) (restore func()) {
	old := blobIdleTimeout
	blobIdleTimeout = d
	return func() { blobIdleTimeout = old }
}

// SetEvictAfter sets how recently used an image must be to be safe from
// eviction in Mirrors made after it, and returns the function that restores it.
func SetEvictAfter(d time.Duration) (restore func()) {
	old := evictAfter
	evictAfter = d
	return func() { evictAfter = old }
}
