package storage

import (
	"context"
	"net/http"
	"reflect"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// s3Metrics counts the S3 driver's HTTP requests by S3 operation, as
// its transport sees them: every attempt minio-go makes, retries included.
type s3Metrics struct {
	requests, errors, retries *prometheus.CounterVec

	mu sync.Mutex
	// failed holds attempts that failed in a way minio-go may retry: the
	// next request of the same call (context), method and URL is a retry.
	failed map[attemptKey]struct{}
}

type attemptKey struct {
	ctx         context.Context
	method, url string
}

// maxFailed bounds the attempts remembered; past it they are forgotten,
// at worst missing a few retries in the count.
const maxFailed = 1024

func newS3Metrics() *s3Metrics {
	op := []string{"operation"}
	return &s3Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nora_s3_requests_total", Help: "HTTP requests sent to S3, retries included, by S3 operation."}, op),
		errors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nora_s3_errors_total", Help: "S3 requests that failed (no response, or an error status other than 404), by S3 operation."}, op),
		retries:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nora_s3_retries_total", Help: "S3 requests that repeat a failed one, by S3 operation."}, op),
		failed:   map[attemptKey]struct{}{},
	}
}

// transport counts the requests next sends.
func (m *s3Metrics) transport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		op := s3Operation(req)
		key := attemptKey{ctx: req.Context(), method: req.Method, url: req.URL.String()}
		if !reflect.TypeOf(key.ctx).Comparable() {
			key.ctx = nil // a map key must be comparable; method and URL remain
		}
		m.requests.WithLabelValues(op).Inc()
		m.mu.Lock()
		if _, ok := m.failed[key]; ok {
			delete(m.failed, key)
			m.retries.WithLabelValues(op).Inc()
		}
		m.mu.Unlock()
		resp, err := next.RoundTrip(req)
		if err != nil || resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound {
			m.errors.WithLabelValues(op).Inc()
			m.mu.Lock()
			if len(m.failed) >= maxFailed {
				clear(m.failed)
			}
			m.failed[key] = struct{}{}
			m.mu.Unlock()
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// s3Operation names the S3 API operation of req, from its method, query
// and headers: a fixed set, so the label's values stay bounded.
func s3Operation(req *http.Request) string {
	q := req.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	copySource := req.Header.Get("X-Amz-Copy-Source") != ""
	switch req.Method {
	case http.MethodHead:
		return "HeadObject"
	case http.MethodGet:
		switch {
		case has("uploads"):
			return "ListMultipartUploads"
		case has("uploadId"):
			return "ListParts"
		case has("list-type") || has("prefix") || has("delimiter"):
			return "ListObjects"
		case has("location"):
			return "GetBucketLocation"
		}
		return "GetObject"
	case http.MethodPut:
		switch {
		case has("uploadId") && copySource:
			return "UploadPartCopy"
		case has("uploadId"):
			return "UploadPart"
		case copySource:
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodPost:
		switch {
		case has("uploads"):
			return "CreateMultipartUpload"
		case has("uploadId"):
			return "CompleteMultipartUpload"
		case has("delete"):
			return "DeleteObjects"
		}
	case http.MethodDelete:
		if has("uploadId") {
			return "AbortMultipartUpload"
		}
		return "DeleteObject"
	}
	return "Other"
}
