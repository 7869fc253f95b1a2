package mirror

import "time"

// SetEvictAfter sets how recently used an image must be to be safe from
// eviction in Mirrors made after it, and returns the function that restores it.
func SetEvictAfter(d time.Duration) (restore func()) {
	old := evictAfter
	evictAfter = d
	return func() { evictAfter = old }
}
