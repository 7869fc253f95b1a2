package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// upload runs a whole upload session of data in repo, in chunks of size
// step, and commits it as d.
func upload(t *testing.T, s *Store, repo string, alg digest.Algorithm, data []byte, step int, d digest.Digest) (BlobInfo, error) {
	t.Helper()
	ctx := t.Context()
	up, err := s.StartUpload(ctx, repo, alg)
	if err != nil {
		t.Fatalf("StartUpload(%s, %q) = %v", repo, alg, err)
	}
	for off := 0; off < len(data); off += step {
		end := min(off+step, len(data))
		got, err := s.AppendUpload(ctx, repo, up.ID, int64(off), bytes.NewReader(data[off:end]))
		if err != nil || got.Offset != int64(end) {
			t.Fatalf("AppendUpload(at %d) = %+v, %v; want offset %d", off, got, err, end)
		}
	}
	return s.CommitUpload(ctx, repo, up.ID, d)
}

func TestUploadCommit(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 640 KB, past the copy buffer
	tests := []struct {
		name     string
		startAlg digest.Algorithm
		d        digest.Digest
		step     int
	}{
		{"sha256 one chunk", "", digest.FromBytes(data), len(data)},
		{"sha256 chunks", digest.SHA256, digest.FromBytes(data), 100_001},
		{"sha512 announced", digest.SHA512, digest.SHA512.FromBytes(data), 300_000},
		{"sha512 at commit re-reads", digest.SHA256, digest.SHA512.FromBytes(data), 300_000},
		{"sha256 at commit of a sha512 upload", digest.SHA512, digest.FromBytes(data), 300_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t)
			up, err := s.StartUpload(ctx, "app", tt.startAlg)
			if err != nil {
				t.Fatalf("StartUpload(%q) = %v", tt.startAlg, err)
			}
			for off := 0; off < len(data); off += tt.step {
				end := min(off+tt.step, len(data))
				got, err := s.AppendUpload(ctx, "app", up.ID, int64(off), bytes.NewReader(data[off:end]))
				if err != nil || got.Offset != int64(end) {
					t.Fatalf("AppendUpload(at %d) = %+v, %v; want offset %d", off, got, err, end)
				}
			}
			_, err = s.StatBlob(ctx, "app", tt.d)
			wantErr(t, "StatBlob before commit", err, ErrBlobNotFound)
			info, err := s.CommitUpload(ctx, "app", up.ID, tt.d)
			if err != nil || info.Digest != tt.d || info.Size != int64(len(data)) {
				t.Fatalf("CommitUpload = %+v, %v; want %s of %d bytes", info, err, tt.d, len(data))
			}
			_, err = s.GetUpload(ctx, "app", up.ID)
			wantErr(t, "GetUpload after commit", err, ErrUploadNotFound)
			if got := readBlob(t, s, "app", tt.d); !bytes.Equal(got, data) {
				t.Errorf("committed blob = %d bytes, want the %d uploaded", len(got), len(data))
			}
			if keys := driverKeys(t, s, "uploads"); len(keys) != 0 {
				t.Errorf("upload files after commit = %v, want none", keys)
			}
			if st, _ := s.Stats(t.Context()); st.Uploads != 0 {
				t.Errorf("Stats.Uploads after commit = %d, want 0", st.Uploads)
			}
		})
	}
}

func TestUploadEmpty(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		d := alg.FromBytes(nil)
		info, err := upload(t, s, "app", "", nil, 1, d)
		if err != nil || info.Size != 0 {
			t.Fatalf("CommitUpload(empty, %s) = %+v, %v; want 0 bytes", alg, info, err)
		}
		if got := readBlob(t, s, "app", d); len(got) != 0 {
			t.Errorf("empty blob = %q, want nothing", got)
		}
	}
	// An empty chunk is a valid append.
	up, _ := s.StartUpload(ctx, "app", "")
	if got, err := s.AppendUpload(ctx, "app", up.ID, 0, strings.NewReader("")); err != nil || got.Offset != 0 {
		t.Fatalf("AppendUpload(empty chunk) = %+v, %v; want offset 0", got, err)
	}
	if _, err := s.CommitUpload(ctx, "app", up.ID, digest.FromBytes(nil)); err != nil {
		t.Fatalf("CommitUpload(after empty chunk) = %v", err)
	}
}

func TestUploadOffsetMismatch(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	up, _ := s.StartUpload(ctx, "app", "")
	if _, err := s.AppendUpload(ctx, "app", up.ID, 0, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 4, 6, 100} {
		_, err := s.AppendUpload(ctx, "app", up.ID, off, strings.NewReader("XXXX"))
		wantErr(t, "AppendUpload(at wrong offset)", err, ErrUploadOffset)
	}
	if got, err := s.GetUpload(ctx, "app", up.ID); err != nil || got.Offset != 5 {
		t.Errorf("GetUpload after refused chunks = %+v, %v; want offset 5", got, err)
	}
	if got, err := s.AppendUpload(ctx, "app", up.ID, -1, strings.NewReader(" world")); err != nil || got.Offset != 11 {
		t.Fatalf("AppendUpload(-1) = %+v, %v; want offset 11", got, err)
	}
	if _, err := s.CommitUpload(ctx, "app", up.ID, digest.FromString("hello world")); err != nil {
		t.Errorf("CommitUpload after refused chunks = %v", err)
	}
}

func TestUploadDigestMismatch(t *testing.T) {
	ctx := t.Context()
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		s := newStore(t)
		up, _ := s.StartUpload(ctx, "app", digest.SHA256)
		s.AppendUpload(ctx, "app", up.ID, 0, strings.NewReader("actual content"))
		named := alg.FromString("claimed content")
		_, err := s.CommitUpload(ctx, "app", up.ID, named)
		wantErr(t, "CommitUpload(wrong "+string(alg)+" digest)", err, ErrDigestMismatch)

		_, err = s.GetUpload(ctx, "app", up.ID)
		wantErr(t, "GetUpload after mismatch", err, ErrUploadNotFound)
		_, err = s.CommitUpload(ctx, "app", up.ID, digest.FromString("actual content"))
		wantErr(t, "CommitUpload(right digest) after mismatch", err, ErrUploadNotFound)
		for _, d := range []digest.Digest{named, digest.FromString("actual content")} {
			_, err := s.StatBlob(ctx, "app", d)
			wantErr(t, "StatBlob after mismatch", err, ErrBlobNotFound)
		}
		if keys := driverKeys(t, s, "uploads"); len(keys) != 0 {
			t.Errorf("upload files after mismatch = %v, want none", keys)
		}
		if keys := driverKeys(t, s, "blobs"); len(keys) != 0 {
			t.Errorf("blob files after mismatch = %v, want none", keys)
		}
	}
}

func TestUploadCommitInvalidDigestKeepsSession(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	up, _ := s.StartUpload(ctx, "app", "")
	s.AppendUpload(ctx, "app", up.ID, 0, strings.NewReader("data"))
	_, err := s.CommitUpload(ctx, "app", up.ID, "sha256:not-hex")
	wantErr(t, "CommitUpload(invalid digest)", err, ErrDigestInvalid)
	if _, err := s.CommitUpload(ctx, "app", up.ID, digest.FromString("data")); err != nil {
		t.Errorf("CommitUpload after an invalid digest = %v, want the session kept", err)
	}
}

func TestUploadSurvivesRestart(t *testing.T) {
	root := t.TempDir()
	ctx := t.Context()
	data := bytes.Repeat([]byte("restart "), 100_000)
	s := openAt(t, root)
	up, err := s.StartUpload(ctx, "app", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload(ctx, "app", up.ID, 0, bytes.NewReader(data[:300_000])); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, root)
	defer s.Close()
	got, err := s.GetUpload(ctx, "app", up.ID)
	if err != nil || got.Offset != 300_000 || !got.Started.Equal(up.Started) {
		t.Fatalf("GetUpload after restart = %+v, %v; want offset 300000, started %v", got, err, up.Started)
	}
	if _, err := s.AppendUpload(ctx, "app", up.ID, 300_000, bytes.NewReader(data[300_000:])); err != nil {
		t.Fatalf("AppendUpload after restart = %v", err)
	}
	// Same algorithm as announced: the digest comes from the persisted
	// hash state, not from reading the bytes again.
	if _, err := s.CommitUpload(ctx, "app", up.ID, digest.FromBytes(data)); err != nil {
		t.Fatalf("CommitUpload after restart = %v", err)
	}
	if got := readBlob(t, s, "app", digest.FromBytes(data)); !bytes.Equal(got, data) {
		t.Errorf("blob after restart = %d bytes, want %d", len(got), len(data))
	}
}

func TestUploadReaderFailsMidway(t *testing.T) {
	ctx := t.Context()
	data := bytes.Repeat([]byte("partial "), 100_000) // 800 KB
	boom := errors.New("connection reset")
	for _, cut := range []int{1, 1000, 256 << 10, 300_000} {
		s := newStore(t)
		up, _ := s.StartUpload(ctx, "app", "")
		body := io.MultiReader(bytes.NewReader(data[:cut]), failingReader{boom})
		got, err := s.AppendUpload(ctx, "app", up.ID, 0, body)
		wantErr(t, "AppendUpload(failing body)", err, boom)
		if got.Offset != int64(cut) {
			t.Errorf("AppendUpload(body failing after %d) offset = %d, want %d", cut, got.Offset, cut)
		}
		if sess, _ := s.GetUpload(ctx, "app", up.ID); sess.Offset != int64(cut) {
			t.Errorf("GetUpload after body failed at %d = offset %d, want %d", cut, sess.Offset, cut)
		}
		if keys := driverKeys(t, s, "uploads"); keys[uploadKey(up.ID)] != int64(cut) {
			t.Errorf("upload file after body failed at %d = %v, want %d bytes", cut, keys, cut)
		}
		if _, err := s.AppendUpload(ctx, "app", up.ID, int64(cut), bytes.NewReader(data[cut:])); err != nil {
			t.Fatalf("AppendUpload(resume at %d) = %v", cut, err)
		}
		if _, err := s.CommitUpload(ctx, "app", up.ID, digest.FromBytes(data)); err != nil {
			t.Errorf("CommitUpload after resuming at %d = %v", cut, err)
		}
	}

	// A body that fails before its first byte leaves the session as it was.
	s := newStore(t)
	up, _ := s.StartUpload(ctx, "app", "")
	s.AppendUpload(ctx, "app", up.ID, 0, strings.NewReader("kept"))
	_, err := s.AppendUpload(ctx, "app", up.ID, 4, failingReader{boom})
	wantErr(t, "AppendUpload(body failing at once)", err, boom)
	if _, err := s.CommitUpload(ctx, "app", up.ID, digest.FromString("kept")); err != nil {
		t.Errorf("CommitUpload after an empty failed chunk = %v", err)
	}
}

// failingDriver fails the failAt'th Write of upload writers, having written
// half its bytes, as a full disk does.
type failingDriver struct {
	Driver
	mu     sync.Mutex
	writes int
	failAt int
}

var errDiskFull = errors.New("no space left on device")

func (d *failingDriver) Writer(ctx context.Context, key string, offset int64) (Writer, error) {
	w, err := d.Driver.Writer(ctx, key, offset)
	if err != nil {
		return nil, err
	}
	return &failingWriter{Writer: w, d: d}, nil
}

type failingWriter struct {
	Writer
	d *failingDriver
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	w.d.writes++
	fail := w.d.writes == w.d.failAt
	w.d.mu.Unlock()
	if fail {
		n, _ := w.Writer.Write(p[:len(p)/2])
		return n, errDiskFull
	}
	return w.Writer.Write(p)
}

// TestUploadWriteFailsMidway checks that when the blob store fails a write
// partway through a chunk, the session records only what was stored and
// a client resuming from the reported offset gets a verified blob.
func TestUploadWriteFailsMidway(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	s.blobs = &failingDriver{Driver: s.blobs, failAt: 2}
	data := bytes.Repeat([]byte("disk full "), 100_000) // 1 MB: several copy buffers
	up, _ := s.StartUpload(ctx, "app", "")
	got, err := s.AppendUpload(ctx, "app", up.ID, 0, bytes.NewReader(data))
	wantErr(t, "AppendUpload(write fails)", err, errDiskFull)
	if got.Offset <= 0 || got.Offset >= int64(len(data)) {
		t.Fatalf("AppendUpload(write fails) offset = %d, want part of %d", got.Offset, len(data))
	}
	if _, err := s.AppendUpload(ctx, "app", up.ID, got.Offset, bytes.NewReader(data[got.Offset:])); err != nil {
		t.Fatalf("AppendUpload(resume at %d) = %v", got.Offset, err)
	}
	if _, err := s.CommitUpload(ctx, "app", up.ID, digest.FromBytes(data)); err != nil {
		t.Errorf("CommitUpload after resuming past a failed write = %v, want the upload's hash to match its bytes", err)
	}
}

func TestCancelUpload(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	up, _ := s.StartUpload(ctx, "app", "")
	s.AppendUpload(ctx, "app", up.ID, 0, strings.NewReader("abandoned"))
	if err := s.CancelUpload(ctx, "app", up.ID); err != nil {
		t.Fatalf("CancelUpload = %v", err)
	}
	_, err := s.GetUpload(ctx, "app", up.ID)
	wantErr(t, "GetUpload after cancel", err, ErrUploadNotFound)
	_, err = s.AppendUpload(ctx, "app", up.ID, -1, strings.NewReader("more"))
	wantErr(t, "AppendUpload after cancel", err, ErrUploadNotFound)
	_, err = s.CommitUpload(ctx, "app", up.ID, digest.FromString("abandoned"))
	wantErr(t, "CommitUpload after cancel", err, ErrUploadNotFound)
	wantErr(t, "CancelUpload twice", s.CancelUpload(ctx, "app", up.ID), ErrUploadNotFound)
	if keys := driverKeys(t, s, "uploads"); len(keys) != 0 {
		t.Errorf("upload files after cancel = %v, want none", keys)
	}
	if st, _ := s.Stats(ctx); st.Uploads != 0 {
		t.Errorf("Stats.Uploads after cancel = %d, want 0", st.Uploads)
	}
}

func TestUploadOtherRepository(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	up, _ := s.StartUpload(ctx, "owner", "")
	s.AppendUpload(ctx, "owner", up.ID, 0, strings.NewReader("mine"))

	_, err := s.GetUpload(ctx, "intruder", up.ID)
	wantErr(t, "GetUpload(other repo)", err, ErrUploadNotFound)
	_, err = s.AppendUpload(ctx, "intruder", up.ID, 4, strings.NewReader("theirs"))
	wantErr(t, "AppendUpload(other repo)", err, ErrUploadNotFound)
	_, err = s.CommitUpload(ctx, "intruder", up.ID, digest.FromString("mine"))
	wantErr(t, "CommitUpload(other repo)", err, ErrUploadNotFound)
	wantErr(t, "CancelUpload(other repo)", s.CancelUpload(ctx, "intruder", up.ID), ErrUploadNotFound)
	_, err = s.StatBlob(ctx, "intruder", digest.FromString("mine"))
	wantErr(t, "StatBlob(other repo)", err, ErrBlobNotFound)

	if _, err := s.CommitUpload(ctx, "owner", up.ID, digest.FromString("mine")); err != nil {
		t.Errorf("CommitUpload(owner) after the intruder's attempts = %v, want the session intact", err)
	}
}

// keyRecorder records every key the store hands its driver.
type keyRecorder struct {
	Driver
	mu   sync.Mutex
	keys []string
}

func (r *keyRecorder) note(keys ...string) {
	r.mu.Lock()
	r.keys = append(r.keys, keys...)
	r.mu.Unlock()
}

func (r *keyRecorder) Reader(ctx context.Context, key string, off int64) (io.ReadCloser, error) {
	r.note(key)
	return r.Driver.Reader(ctx, key, off)
}

func (r *keyRecorder) Stat(ctx context.Context, key string) (int64, error) {
	r.note(key)
	return r.Driver.Stat(ctx, key)
}

func (r *keyRecorder) Writer(ctx context.Context, key string, off int64) (Writer, error) {
	r.note(key)
	return r.Driver.Writer(ctx, key, off)
}

func (r *keyRecorder) Move(ctx context.Context, from, to string) error {
	r.note(from, to)
	return r.Driver.Move(ctx, from, to)
}

func (r *keyRecorder) Delete(ctx context.Context, key string) error {
	r.note(key)
	return r.Driver.Delete(ctx, key)
}

func TestUploadInvalidIDs(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	rec := &keyRecorder{Driver: s.blobs}
	s.blobs = rec
	started, _ := s.StartUpload(ctx, "app", "")
	ids := []string{
		"",
		"../x",
		"../../meta.db",
		"../uploads/" + started.ID,
		started.ID + "/../../meta.db",
		started.ID[:31],
		started.ID + "0",
		strings.Repeat("../", 10) + "xx",
		strings.Repeat("0", 32), // well formed, never started
	}
	for _, id := range ids {
		_, err := s.GetUpload(ctx, "app", id)
		wantErr(t, "GetUpload("+id+")", err, ErrUploadNotFound)
		_, err = s.AppendUpload(ctx, "app", id, -1, strings.NewReader("payload"))
		wantErr(t, "AppendUpload("+id+")", err, ErrUploadNotFound)
		_, err = s.CommitUpload(ctx, "app", id, digest.FromString("payload"))
		wantErr(t, "CommitUpload("+id+")", err, ErrUploadNotFound)
		wantErr(t, "CancelUpload("+id+")", s.CancelUpload(ctx, "app", id), ErrUploadNotFound)
	}
	if len(rec.keys) != 0 {
		t.Errorf("driver keys used for invalid upload ids = %q, want none", rec.keys)
	}
	if keys := driverKeys(t, s, ""); len(keys) != 3 {
		t.Errorf("files under the root = %v, want only metadata.db, metadata.wal and meta.db", keys)
	}
	if _, err := s.GetUpload(ctx, "app", started.ID); err != nil {
		t.Errorf("GetUpload(real session) after invalid ids = %v", err)
	}
}

func TestStartUploadUnsupportedAlgorithm(t *testing.T) {
	s := newStore(t)
	_, err := s.StartUpload(t.Context(), "app", "md5")
	wantErr(t, "StartUpload(md5)", err, ErrDigestInvalid)
}
