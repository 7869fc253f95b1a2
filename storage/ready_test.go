package storage

import (
	"strings"
	"testing"
	"time"

	"github.com/nora-registry/nora/storage/s3test"
)

// TestReadyFrozenS3: with the S3 server frozen (it accepts connections and
// never answers) and the default timeout and retries, which together wait
// 90 s, Ready still answers within a few seconds, and says why.
func TestReadyFrozenS3(t *testing.T) {
	srv := s3test.Start(t)
	s3 := s3Config(srv, "ready")
	s3.MaxRetries, s3.Timeout = DefaultS3Config().MaxRetries, DefaultS3Config().Timeout
	st, err := Open(t.Context(), Config{Driver: "s3", Root: t.TempDir(), S3: s3})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Ready(t.Context()); err != nil {
		t.Fatalf("Ready() = %v, want nil", err)
	}

	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- st.Ready(t.Context()) }()
	select {
	case err := <-done:
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "blob store: S3 at "+srv.Endpoint+" did not answer within") {
			t.Errorf("Ready() with S3 frozen = %v, want it to say S3 did not answer", err)
		}
		t.Logf("Ready() with S3 frozen answered after %v: %v", took.Round(time.Millisecond), err)
	case <-time.After(6 * time.Second):
		t.Errorf("Ready() with S3 frozen has not answered after 6s, want a bounded wait")
	}
}
