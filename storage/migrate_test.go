package storage

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage/s3test"
)

// TestMigrate copies blobs filesystem → S3 → filesystem: content that does
// not match its digest is reported and never appears in the destination,
// a second run copies nothing, and keys that are not blobs stay behind.
func TestMigrate(t *testing.T) {
	srv := s3test.Start(t)
	fs, err := NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s3, err := NewS3(t.Context(), s3Config(srv, "migrate"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for i, size := range []int{0, 100, 6 << 20} {
		data := randomBytes(uint64(20+i), size)
		d := digest.NewDigestFromBytes(digest.SHA256, sha256Sum(data))
		if i == 1 {
			s := sha512.Sum512(data)
			d = digest.NewDigestFromBytes(digest.SHA512, s[:])
		}
		putObject(t, fs, blobKey(d), data)
		want[blobKey(d)] = data
	}
	bad := blobKey(digest.FromString("the bytes it should hold"))
	putObject(t, fs, bad, []byte("other bytes"))
	// An upload key holds an open session's bytes, or a blob that S3
	// kept where its upload wrote it: copied to the same key.
	putObject(t, fs, "uploads/0123456789abcdef0123456789abcdef", []byte("an open upload"))
	want["uploads/0123456789abcdef0123456789abcdef"] = []byte("an open upload")

	var failed []string
	run := func(from, to Driver) MigrateProgress {
		failed = nil
		p, err := Migrate(t.Context(), from, to, 2, nil, func(key string, err error) {
			failed = append(failed, fmt.Sprintf("%s: %v", key, err))
		})
		if err != nil {
			t.Fatalf("Migrate = %v", err)
		}
		return p
	}
	p := run(fs, s3)
	if p.Blobs != 5 || p.Copied != 4 || p.Skipped != 0 || p.Failed != 1 || len(failed) != 1 || !strings.Contains(failed[0], "digest does not match") {
		t.Errorf("first run = %+v, failures %q; want 4 copied and the mismatched blob failed", p, failed)
	}
	for key, data := range want {
		wantObject(t, s3, key, data)
	}
	if _, err := s3.Stat(t.Context(), bad); err == nil {
		t.Errorf("the blob whose content does not match its digest reached the destination")
	}
	var uploads int
	s3.Walk(t.Context(), "uploads", func(string, int64) error { uploads++; return nil })
	if uploads != 1 {
		t.Errorf("%d upload keys in the destination, want the one copied (no temporary key left over)", uploads)
	}
	if p := run(fs, s3); p.Copied != 0 || p.Skipped != 4 || p.Failed != 1 {
		t.Errorf("second run = %+v, want 4 already there", p)
	}
	back, err := NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if p := run(s3, back); p.Copied != 4 || p.Failed != 0 {
		t.Errorf("S3 to filesystem = %+v, failures %q; want 4 copied", p, failed)
	}
	for key, data := range want {
		wantObject(t, back, key, data)
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// gatedReads is a Driver whose readers stop halfway through each object
// until open is closed.
type gatedReads struct {
	Driver
	open chan struct{}
}

func (g gatedReads) Reader(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	rc, err := g.Driver.Reader(ctx, key, offset)
	if err != nil {
		return nil, err
	}
	size, err := g.Driver.Stat(ctx, key)
	if err != nil {
		rc.Close()
		return nil, err
	}
	gated := io.MultiReader(io.LimitReader(rc, size/2), gate(g.open), rc)
	return struct {
		io.Reader
		io.Closer
	}{gated, rc}, nil
}

// gate reads nothing, once it is closed.
type gate chan struct{}

func (g gate) Read([]byte) (int, error) {
	<-g
	return 0, io.EOF
}

// TestMigrateReportsUntilTheEnd: progress goes on while the last blob
// still copies, counting its bytes as they are read, and the summary
// tells the blobs copied from those already there, with their bytes.
func TestMigrateReportsUntilTheEnd(t *testing.T) {
	defer func(d time.Duration) { migrateEvery = d }(migrateEvery)
	migrateEvery = time.Millisecond
	from, err := NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	to, err := NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	large, small := randomBytes(1, 1<<20), []byte("already there")
	putObject(t, from, blobKey(digest.FromBytes(large)), large)
	putObject(t, from, blobKey(digest.FromBytes(small)), small)
	putObject(t, to, blobKey(digest.FromBytes(small)), small)

	open := make(chan struct{})
	var once sync.Once
	failsafe := time.AfterFunc(20*time.Second, func() { once.Do(func() { close(open) }) })
	defer failsafe.Stop()
	var during *MigrateProgress
	p, err := Migrate(t.Context(), gatedReads{from, open}, to, 2, func(p MigrateProgress) {
		if during == nil && p.Read == int64(len(large))/2 && p.Skipped == 1 {
			during = &p
			once.Do(func() { close(open) })
		}
	}, nil)
	if err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	if during == nil {
		t.Fatal("no progress reported while the last blob was copying")
	}
	if during.Copied != 0 || during.SkippedBytes != int64(len(small)) || during.Bytes != int64(len(large)+len(small)) {
		t.Errorf("progress while copying = %+v, want half of the large blob read and the small one already there", *during)
	}
	want := MigrateProgress{Blobs: 2, Bytes: int64(len(large) + len(small)), Copied: 1, CopiedBytes: int64(len(large)),
		Skipped: 1, SkippedBytes: int64(len(small)), Read: int64(len(large))}
	p.Elapsed = 0
	if p != want {
		t.Errorf("Migrate = %+v, want %+v", p, want)
	}
}
