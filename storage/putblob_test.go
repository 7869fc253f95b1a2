package storage

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage/s3test"
)

// recordingTap is a BlobTap that reads back, through Opened's function,
// what Wrote reported, at every write.
type recordingTap struct {
	read     func(int64) (io.ReadCloser, error)
	got      []byte
	writes   int
	verified bool
	err      error
}

func (r *recordingTap) Opened(read func(int64) (io.ReadCloser, error)) { r.read = read }

func (r *recordingTap) Wrote(n int64) {
	r.writes++
	if r.err != nil {
		return
	}
	rc, err := r.read(int64(len(r.got)))
	if err != nil {
		r.err = err
		return
	}
	defer rc.Close()
	more, err := io.ReadAll(io.LimitReader(rc, n-int64(len(r.got))))
	r.got = append(r.got, more...)
	if err == nil && int64(len(r.got)) != n {
		err = io.ErrUnexpectedEOF
	}
	r.err = err
}

func (r *recordingTap) Verified() { r.verified = true }

// TestPutBlobTap: on both drivers, a tap reads every byte as it is
// written, hears Verified only for a blob that matches its digest, and no
// copy is left behind.
func TestPutBlobTap(t *testing.T) {
	srv := s3test.Start(t)
	for _, cfg := range []Config{
		{Driver: "filesystem", Root: t.TempDir()},
		{Driver: "s3", Root: t.TempDir(), S3: s3Config(srv, "tap")},
	} {
		t.Run(cfg.Driver, func(t *testing.T) {
			st, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			data := randomBytes(7, 3<<20+5)
			d := digest.FromBytes(data)
			tap := &recordingTap{}
			// A reader of odd sizes: many writes.
			r := io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:]))
			if _, err := st.PutBlobTap(t.Context(), "team/app", d, int64(len(data)), r, tap); err != nil {
				t.Fatal(err)
			}
			if tap.err != nil || !bytes.Equal(tap.got, data) || !tap.verified || tap.writes < 2 {
				t.Errorf("tap read %d bytes (err %v) in %d writes, verified %v; want %d, verified", len(tap.got), tap.err, tap.writes, tap.verified, len(data))
			}
			if got := readBlob(t, st, "team/app", d); !bytes.Equal(got, data) {
				t.Errorf("stored blob differs")
			}

			bad := &recordingTap{}
			wrong := digest.FromString("other")
			if _, err := st.PutBlobTap(t.Context(), "team/app", wrong, -1, bytes.NewReader(data), bad); !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("PutBlobTap(wrong digest) = %v, want ErrDigestMismatch", err)
			}
			if bad.verified {
				t.Errorf("a blob that does not match its digest was reported verified")
			}
			if left, _ := os.ReadDir(filepath.Join(cfg.Root, followDir)); len(left) != 0 {
				t.Errorf("%s holds %d files after the writes, want none", followDir, len(left))
			}
		})
	}
}
