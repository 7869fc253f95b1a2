package storage

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nora-registry/nora/storage/s3test"
)

// TestS3Metrics runs the driver against versitygw behind a proxy that
// answers the first HEAD with 503: the driver counts that request as an
// error, minio-go's second attempt as a retry, and a 404 as no error.
func TestS3Metrics(t *testing.T) {
	srv := s3test.Start(t)
	target, _ := url.Parse("http://" + srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var failed atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && failed.CompareAndSwap(false, true) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()

	c := s3Config(srv, "metrics/")
	c.Endpoint, c.MaxRetries = strings.TrimPrefix(front.URL, "http://"), 3
	root := t.TempDir()
	d, err := NewS3(t.Context(), c, root)
	if err != nil {
		t.Fatal(err)
	}
	store := &Store{root: root, blobs: d}
	reg := prometheus.NewRegistry()
	if err := store.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}

	w, err := d.Writer(t.Context(), "k", 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(t.Context(), "k"); err != nil {
		t.Fatalf("Stat(k) through one 503 = %v, want a retry that succeeds", err)
	}
	if _, err := d.Stat(t.Context(), "missing"); err == nil {
		t.Fatal("Stat(missing) = nil error, want not found")
	}

	ops := func(v *prometheus.CounterVec, op string) float64 {
		var m dto.Metric
		v.WithLabelValues(op).Write(&m)
		return m.GetCounter().GetValue()
	}
	m := d.metrics
	if got := ops(m.requests, "HeadObject"); got < 3 {
		t.Errorf("nora_s3_requests_total{operation=HeadObject} = %v, want at least 3 (503, its retry, a 404)", got)
	}
	if got := ops(m.errors, "HeadObject"); got != 1 {
		t.Errorf("nora_s3_errors_total{operation=HeadObject} = %v, want 1 (the 503; a 404 is an answer)", got)
	}
	if got := ops(m.retries, "HeadObject"); got != 1 {
		t.Errorf("nora_s3_retries_total{operation=HeadObject} = %v, want 1", got)
	}
	if got := ops(m.requests, "ListObjects"); got < 1 {
		t.Errorf("nora_s3_requests_total{operation=ListObjects} = %v, want the start-up check", got)
	}
	if got := ops(m.requests, "Other"); got != 0 {
		t.Errorf("nora_s3_requests_total{operation=Other} = %v, want every request named", got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, n := range []string{"nora_storage_metadata_bytes", "nora_s3_requests_total", "nora_s3_errors_total", "nora_s3_retries_total"} {
		if !names[n] {
			t.Errorf("RegisterMetrics registered no %s", n)
		}
	}
}

func TestS3Operation(t *testing.T) {
	tests := []struct{ method, target, copySource, want string }{
		{"HEAD", "/b/k", "", "HeadObject"},
		{"GET", "/b/k", "", "GetObject"},
		{"GET", "/b/?list-type=2&prefix=x", "", "ListObjects"},
		{"GET", "/b/?uploads&prefix=x", "", "ListMultipartUploads"},
		{"GET", "/b/k?uploadId=1", "", "ListParts"},
		{"GET", "/b/?location", "", "GetBucketLocation"},
		{"PUT", "/b/k", "", "PutObject"},
		{"PUT", "/b/k", "/b/j", "CopyObject"},
		{"PUT", "/b/k?partNumber=1&uploadId=1", "", "UploadPart"},
		{"PUT", "/b/k?partNumber=1&uploadId=1", "/b/j", "UploadPartCopy"},
		{"POST", "/b/k?uploads", "", "CreateMultipartUpload"},
		{"POST", "/b/k?uploadId=1", "", "CompleteMultipartUpload"},
		{"POST", "/b/?delete", "", "DeleteObjects"},
		{"DELETE", "/b/k?uploadId=1", "", "AbortMultipartUpload"},
		{"DELETE", "/b/k", "", "DeleteObject"},
		{"PATCH", "/b/k", "", "Other"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.target, nil)
		if tt.copySource != "" {
			r.Header.Set("X-Amz-Copy-Source", tt.copySource)
		}
		if got := s3Operation(r); got != tt.want {
			t.Errorf("s3Operation(%s %s, copy source %q) = %q, want %q", tt.method, tt.target, tt.copySource, got, tt.want)
		}
	}
}
