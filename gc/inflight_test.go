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
)

// TestMonolithicUploadSurvivesGC: a blob pushed in one request whose body
// stalls for longer than the grace period is not an orphan; passes that
// run meanwhile leave its file alone, and the blob commits whole.
func TestMonolithicUploadSurvivesGC(t *testing.T) {
	root := t.TempDir()
	s, err := storage.Open(t.Context(), storage.Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := bytes.Repeat([]byte("stalled body "), 50_000) // 650 KB: some of it on disk before the stall
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
	waitFile(t, filepath.Join(root, "uploads"))

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
