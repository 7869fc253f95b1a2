package replicate

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Backoff spaces the retries of a failing remote: exponential from Min,
// capped at Max, with full jitter in the upper half so that many workers
// failing together do not retry together.
type Backoff struct {
	Min, Max time.Duration
	failures int
}

// Next returns the delay before the next retry and counts a failure.
func (b *Backoff) Next() time.Duration {
	d := b.Min << min(b.failures, 30)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	b.failures++
	return d/2 + rand.N(d/2+1)
}

// Reset forgets the failures after a success.
func (b *Backoff) Reset() { b.failures = 0 }

// retryAfter remembers the latest Retry-After a remote sent with a 429
// or 503, and holds every request to it until that time: go-containerregistry's
// own quick retries included.
type retryAfter struct {
	next http.RoundTripper
	mu   sync.Mutex
	at   time.Time
}

// RoundTrip waits out a pending Retry-After, then sends req.
func (r *retryAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	if d := time.Until(r.notBefore()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
	}
	resp, err := r.next.RoundTrip(req)
	if err == nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); d > 0 {
			r.mu.Lock()
			r.at = time.Now().Add(d)
			r.mu.Unlock()
		}
	}
	return resp, err
}

func (r *retryAfter) notBefore() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at
}

// maxRetryAfter bounds what a remote can make a worker wait.
const maxRetryAfter = 30 * time.Minute

// parseRetryAfter reads a Retry-After header, seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}
