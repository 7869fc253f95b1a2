package gc

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
	"github.com/nora-registry/nora/storage/s3test"
)

// TestMonolithicUploadSurvivesGC: a blob pushed in one request whose body
// stalls for longer than the grace period is not an orphan; passes that
// run meanwhile leave its bytes alone (an upload file on a filesystem, a
// multipart upload on S3), and the blob commits whole.
func TestMonolithicUploadSurvivesGC(t *testing.T) {
	t.Run("filesystem", func(t *testing.T) {
		root := t.TempDir()
		stalledPushSurvivesGC(t, storage.Config{Driver: "filesystem", Root: root}, filepath.Join(root, "uploads"))
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t)
		root := t.TempDir()
		cfg := storage.Config{Driver: "s3", Root: root, S3: storage.DefaultS3Config()}
		cfg.S3.Endpoint, cfg.S3.Bucket, cfg.S3.Prefix = srv.Endpoint, srv.Bucket, "inflight/"
		cfg.S3.AccessKey, cfg.S3.SecretKey, cfg.S3.Secure, cfg.S3.PartSizeMiB = srv.AccessKey, srv.SecretKey, false, 5
		stalledPushSurvivesGC(t, cfg, filepath.Join(root, "s3-spool"))
	})
}

// stalledPushSurvivesGC runs GC passes while a push into a store of cfg
// stalls with some of its bytes in a file under dir.
func stalledPushSurvivesGC(t *testing.T, cfg storage.Config, dir string) {
	s, err := storage.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 13 MB: on S3, a part of the multipart upload is sent before the stall.
	data := bytes.Repeat([]byte("stalled body "), 1_000_000)
	d := digest.FromBytes(data)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.PutBlob(t.Context(), "app", d, int64(len(data)), pr)
		done <- err
	}()
	half := len(data) / 2
	if _, err := pw.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	waitFile(t, dir)

	// Two passes: the first would note the file, the second delete it.
	opts := Options{Grace: time.Millisecond, UploadMaxAge: time.Millisecond}
	t0 := time.Now()
	for i, now := range []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour)} {
		opts.Now = now
		p, err := Plan(t.Context(), s, opts)
		if err != nil {
			t.Fatalf("Plan(pass %d) = %v", i+1, err)
		}
		if keys := keys(p.Items); len(keys) > 0 {
			t.Errorf("pass %d plans to delete %v while a push is writing", i+1, keys)
		}
		if _, err := Apply(t.Context(), s, p); err != nil {
			t.Fatalf("Apply(pass %d) = %v", i+1, err)
		}
	}

	if _, err := pw.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("PutBlob after GC passes = %v", err)
	}
	rc, err := s.OpenBlob(t.Context(), d, 0)
	if err != nil {
		t.Fatalf("OpenBlob = %v", err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, data) {
		t.Errorf("blob holds %d bytes, want the %d pushed", len(got), len(data))
	}
}

// waitFile waits until dir holds a file with bytes in it.
func waitFile(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Size() > 0 {
				return
			}
		}
	}
	t.Fatalf("no upload file with bytes appeared in %s", dir)
}
