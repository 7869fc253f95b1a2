package storage

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// openLimited opens a store at root with set applied to its Config; the
// caller closes it.
func openLimited(t *testing.T, root string, set func(*Config)) *Store {
	t.Helper()
	cfg := Config{Driver: "filesystem", Root: root}
	set(&cfg)
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	return s
}

// limitedStore is openLimited on a fresh directory, closed when the test
// ends.
func limitedStore(t *testing.T, set func(*Config)) *Store {
	t.Helper()
	s := openLimited(t, t.TempDir(), set)
	t.Cleanup(func() { s.Close() })
	return s
}

func as(ctx context.Context, who string) context.Context {
	return WithUploader(ctx, Uploader{Owner: who, Client: who})
}

func TestUploadCaps(t *testing.T) {
	root := t.TempDir()
	limits := func(c *Config) { c.MaxUploads, c.MaxUploadsPerClient = 3, 2 }
	s := openLimited(t, root, limits)
	alice, bob, carol := as(t.Context(), "alice"), as(t.Context(), "bob"), as(t.Context(), "carol")
	start := func(ctx context.Context) (Upload, error) { return s.StartUpload(ctx, "app", "") }
	a1, _ := start(alice)
	if _, err := start(alice); err != nil {
		t.Fatalf("StartUpload(alice's second) = %v", err)
	}
	_, err := start(alice)
	wantErr(t, "StartUpload(alice's third, per-client cap 2)", err, ErrTooManyUploads)
	if _, err := start(bob); err != nil {
		t.Fatalf("StartUpload(bob's first) = %v", err)
	}
	_, err = start(carol)
	wantErr(t, "StartUpload(carol's first, total cap 3)", err, ErrTooManyUploads)
	if err == nil || !strings.Contains(err.Error(), "storage.max_uploads") {
		t.Errorf("StartUpload over the total cap = %v, want the key named", err)
	}

	// Ending a session, by cancel or commit, frees its place.
	if err := s.CancelUpload(alice, "app", a1.ID); err != nil {
		t.Fatal(err)
	}
	c1, err := start(carol)
	if err != nil {
		t.Fatalf("StartUpload(carol after a cancel) = %v", err)
	}
	if _, err := s.FinishUpload(carol, "app", c1.ID, digest.FromString("x"), 1, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// The counts survive a restart.
	s.Close()
	s = openLimited(t, root, limits)
	defer s.Close()
	if _, err := s.StartUpload(carol, "app", ""); err != nil {
		t.Fatalf("StartUpload(carol after a commit and a restart) = %v", err)
	}
	_, err = s.StartUpload(carol, "app", "")
	wantErr(t, "StartUpload(4th session after restart)", err, ErrTooManyUploads)
}

func TestUploadCountsOfOlderStore(t *testing.T) {
	root := t.TempDir()
	s := openAt(t, root)
	for range 2 {
		if _, err := s.StartUpload(t.Context(), "app", ""); err != nil {
			t.Fatal(err)
		}
	}
	// A store whose sessions were never counted, as before caps existed.
	if err := s.metaDB().Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketUploadCounts) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openLimited(t, root, func(c *Config) { c.MaxUploads = 3 })
	defer s.Close()
	if _, err := s.StartUpload(t.Context(), "app", ""); err != nil {
		t.Fatalf("StartUpload(3rd) = %v", err)
	}
	_, err := s.StartUpload(t.Context(), "app", "")
	wantErr(t, "StartUpload(4th, cap 3 with 2 older sessions)", err, ErrTooManyUploads)
}

func TestExpiredUploadFreesItsPlace(t *testing.T) {
	s := limitedStore(t, func(c *Config) { c.MaxUploads = 1 })
	up, _ := s.StartUpload(t.Context(), "app", "")
	if ups, err := s.ExpireUploads(t.Context(), []string{up.ID}, time.Now().Add(time.Hour)); err != nil || len(ups) != 1 {
		t.Fatalf("ExpireUploads = %v, %v; want the session expired", ups, err)
	}
	if _, err := s.StartUpload(t.Context(), "app", ""); err != nil {
		t.Errorf("StartUpload after GC expired the only session = %v", err)
	}
}

func TestUploadIdleExpiry(t *testing.T) {
	s := limitedStore(t, func(c *Config) { c.UploadIdleExpiry = "300ms"; c.MaxUploads = 2 })
	ctx := t.Context()
	idle, _ := s.StartUpload(ctx, "app", "")
	if _, err := s.AppendUpload(ctx, "app", idle.ID, 0, strings.NewReader("some bytes")); err != nil {
		t.Fatal(err)
	}
	busy, _ := s.StartUpload(ctx, "app", "")
	for range 4 { // writes keep busy alive past the expiry
		time.Sleep(100 * time.Millisecond)
		if _, err := s.AppendUpload(ctx, "app", busy.ID, -1, strings.NewReader("more")); err != nil {
			t.Fatalf("AppendUpload(busy) = %v", err)
		}
	}
	_, err := s.GetUpload(ctx, "app", idle.ID)
	wantErr(t, "GetUpload(idle past expiry)", err, ErrUploadNotFound)
	_, err = s.AppendUpload(ctx, "app", idle.ID, -1, strings.NewReader("late"))
	wantErr(t, "AppendUpload(idle past expiry)", err, ErrUploadNotFound)

	// Opening a session sweeps: the idle one's place and bytes are freed.
	if _, err := s.StartUpload(ctx, "app", ""); err != nil {
		t.Fatalf("StartUpload(at the cap, one session idle) = %v", err)
	}
	keys := driverKeys(t, s, "uploads")
	if _, ok := keys[uploadKey(idle.ID)]; ok {
		t.Errorf("upload files after the sweep = %v, want the idle session's gone", keys)
	}
	if _, err := s.GetUpload(ctx, "app", busy.ID); err != nil {
		t.Errorf("GetUpload(busy) = %v, want it kept", err)
	}
}

// noRead fails the test if anything reads it.
type noRead struct{ t *testing.T }

func (r noRead) Read([]byte) (int, error) {
	r.t.Error("body read although its announced size is over the limit")
	return 0, io.EOF
}

func TestMaxBlobSize(t *testing.T) {
	s := limitedStore(t, func(c *Config) { c.MaxBlobSize = "1KiB" })
	ctx := t.Context()
	small, big := bytes.Repeat([]byte("s"), 1024), bytes.Repeat([]byte("b"), 1025)

	pushBlob(t, s, "app", small)
	_, err := s.PutBlob(ctx, "app", digest.FromBytes(big), int64(len(big)), noRead{t})
	wantErr(t, "PutBlob(announced 1025 bytes, limit 1KiB)", err, ErrBlobTooLarge)
	_, err = s.PutBlob(ctx, "app", digest.FromBytes(big), -1, bytes.NewReader(big))
	wantErr(t, "PutBlob(streamed 1025 bytes)", err, ErrBlobTooLarge)

	up, _ := s.StartUpload(ctx, "app", "")
	if _, err := s.AppendUpload(ctx, "app", up.ID, 0, bytes.NewReader(big[:1000])); err != nil {
		t.Fatal(err)
	}
	_, err = s.AppendUploadSized(ctx, "app", up.ID, 1000, 25, noRead{t})
	wantErr(t, "AppendUploadSized(past the limit)", err, ErrBlobTooLarge)
	_, err = s.GetUpload(ctx, "app", up.ID)
	wantErr(t, "GetUpload(after a chunk past the limit)", err, ErrUploadNotFound)

	up, _ = s.StartUpload(ctx, "app", "")
	_, err = s.AppendUpload(ctx, "app", up.ID, 0, bytes.NewReader(big))
	wantErr(t, "AppendUpload(streamed past the limit)", err, ErrBlobTooLarge)
	_, err = s.GetUpload(ctx, "app", up.ID)
	wantErr(t, "GetUpload(after streaming past the limit)", err, ErrUploadNotFound)
	if keys := driverKeys(t, s, "uploads"); len(keys) > 0 {
		t.Errorf("upload files after refused blobs = %v, want none", keys)
	}
}

func TestUploadOwner(t *testing.T) {
	s := newStore(t)
	alice, bob := as(t.Context(), "user:alice"), as(t.Context(), "user:bob")
	up, _ := s.StartUpload(alice, "app", "")
	_, err := s.GetUpload(bob, "app", up.ID)
	wantErr(t, "GetUpload(bob, alice's session)", err, ErrUploadNotFound)
	_, err = s.AppendUpload(bob, "app", up.ID, 0, strings.NewReader("x"))
	wantErr(t, "AppendUpload(bob, alice's session)", err, ErrUploadNotFound)
	_, err = s.FinishUpload(bob, "app", up.ID, digest.FromString("x"), 1, strings.NewReader("x"))
	wantErr(t, "FinishUpload(bob, alice's session)", err, ErrUploadNotFound)
	wantErr(t, "CancelUpload(bob, alice's session)", s.CancelUpload(bob, "app", up.ID), ErrUploadNotFound)
	_, err = s.GetUpload(t.Context(), "app", up.ID)
	wantErr(t, "GetUpload(no uploader, alice's session)", err, ErrUploadNotFound)
	if _, err := s.FinishUpload(alice, "app", up.ID, digest.FromString("x"), 1, strings.NewReader("x")); err != nil {
		t.Fatalf("FinishUpload(alice) = %v", err)
	}

	// A session with no owner, as made before owners were recorded, is
	// anyone's.
	old, _ := s.StartUpload(t.Context(), "app", "")
	if _, err := s.AppendUpload(bob, "app", old.ID, 0, strings.NewReader("y")); err != nil {
		t.Errorf("AppendUpload(bob, ownerless session) = %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"", 0, true}, {"1048576", 1 << 20, true}, {"512MiB", 512 << 20, true},
		{"10GiB", 10 << 30, true}, {"2TB", 2e12, true}, {"1 KiB", 1024, true}, {"7B", 7, true},
		{"-1", 0, false}, {"ten", 0, false}, {"1.5GiB", 0, false}, {"9999999999TiB", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for key, set := range map[string]func(*Config){
		"storage.max_uploads":            func(c *Config) { c.MaxUploads = -1 },
		"storage.max_uploads_per_client": func(c *Config) { c.MaxUploadsPerClient = -1 },
		"storage.max_blob_size":          func(c *Config) { c.MaxBlobSize = "big" },
		"storage.upload_idle_expiry":     func(c *Config) { c.UploadIdleExpiry = "soon" },
	} {
		c := DefaultConfig()
		set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate(bad %s) = %v, want an error naming the key", key, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}
