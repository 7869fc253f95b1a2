package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/nora-registry/nora/storage/s3test"
)

// s3Config returns a [storage.s3] section for srv.
func s3Config(srv *s3test.Server, prefix string) S3Config {
	c := DefaultS3Config()
	c.Endpoint, c.Bucket, c.Prefix = srv.Endpoint, srv.Bucket, prefix
	c.AccessKey, c.SecretKey = srv.AccessKey, srv.SecretKey
	c.Secure, c.MaxRetries, c.PartSizeMiB = false, 1, 5
	return c
}

func TestS3Driver(t *testing.T) { testS3Driver(t, s3test.Start(t)) }

// TestS3DriverMinIO runs the driver suite on MinIO, the server most
// users run.
func TestS3DriverMinIO(t *testing.T) { testS3Driver(t, s3test.StartMinIO(t)) }

func testS3Driver(t *testing.T, srv *s3test.Server) {
	n := 0
	testDriver(t, func(t *testing.T) Driver {
		n++
		// One bucket; a prefix per subtest keeps them apart, as it keeps
		// registries sharing a bucket apart.
		d, err := NewS3(t.Context(), s3Config(srv, fmt.Sprintf("t%d/", n)), t.TempDir())
		if err != nil {
			t.Fatalf("NewS3 = %v", err)
		}
		return d
	})
}

func TestS3StartErrors(t *testing.T) {
	srv := s3test.Start(t)
	tests := []struct {
		name string
		edit func(c *S3Config)
		want string
	}{
		{"missing bucket", func(c *S3Config) { c.Bucket = "no-such-bucket" }, `storage.s3.bucket: bucket "no-such-bucket" does not exist`},
		{"bad secret", func(c *S3Config) { c.SecretKey = "wrong" }, "storage.s3.access_key: " + srv.Endpoint + " refused the credentials"},
		{"unknown access key", func(c *S3Config) { c.AccessKey = "nobody" }, "storage.s3.access_key: " + srv.Endpoint + " refused the credentials"},
		{"unreachable", func(c *S3Config) { c.Endpoint = "127.0.0.1:1" }, "storage.s3.endpoint: 127.0.0.1:1 unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s3Config(srv, "")
			tt.edit(&c)
			_, err := NewS3(context.Background(), c, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewS3 = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// openS3Store opens a store on srv with blobs under prefix, closed when
// the test ends.
func openS3Store(t *testing.T, srv *s3test.Server, prefix string) (*Store, *S3) {
	t.Helper()
	st, err := Open(t.Context(), Config{Driver: "s3", Root: t.TempDir(), S3: s3Config(srv, prefix)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, st.blobs.(*S3)
}

// s3Objects lists every object name in the bucket under prefix.
func s3Objects(t *testing.T, d *S3) []string {
	t.Helper()
	var names []string
	for obj := range d.client.ListObjects(t.Context(), d.bucket, minio.ListObjectsOptions{Prefix: d.prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		names = append(names, strings.TrimPrefix(obj.Key, d.prefix))
	}
	return names
}

// TestS3ChunkedUpload appends 1 MiB chunks one Writer at a time, as
// chunked uploads do, with a new driver (a registry restart) halfway,
// then moves the key: every segment but the last is at least 5 MiB, the
// bytes read back in order, and nothing is left behind.
func TestS3ChunkedUpload(t *testing.T) {
	srv := s3test.Start(t)
	spool := t.TempDir()
	open := func() *S3 {
		d, err := NewS3(t.Context(), s3Config(srv, "chunks"), spool)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := open()
	data := randomBytes(11, 13<<20+777)
	const chunk = 1 << 20
	for off := 0; off < len(data); off += chunk {
		if off == 7*chunk {
			d = open()
		}
		w, err := d.Writer(t.Context(), "uploads/u1", int64(off))
		if err != nil {
			t.Fatalf("Writer at %d = %v", off, err)
		}
		w.Write(data[off:min(off+chunk, len(data))])
		if err := w.Commit(); err != nil {
			t.Fatalf("Commit at %d = %v", off, err)
		}
		ps, err := d.layout(t.Context(), "uploads/u1")
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range ps[:len(ps)-1] {
			if p.size < minSegment {
				t.Fatalf("after %d bytes: piece %d of %d is %d bytes, under the 5 MiB minimum", off+chunk, i, len(ps), p.size)
			}
		}
	}
	wantObject(t, d, "uploads/u1", data)
	if got := readObject(t, d, "uploads/u1", 6<<20+5); !bytes.Equal(got, data[6<<20+5:]) {
		t.Errorf("Reader at an offset inside the second segment: %d bytes, want %d matching", len(got), len(data)-(6<<20+5))
	}
	wantMovedAlone(t, d, spool, "uploads/u1", "blobs/sha256/ab/abcd", data)
}

// wantMovedAlone moves from to to and checks that to holds data and is
// then the bucket's only object, and that the spool is empty.
func wantMovedAlone(t *testing.T, d *S3, spool, from, to string, data []byte) {
	t.Helper()
	ps, err := d.layout(t.Context(), from)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Move(t.Context(), from, to); err != nil {
		t.Fatalf("Move(%q, %q) = %v", from, to, err)
	}
	wantObject(t, d, to, data)
	// A multipart object's ETag ends in -<parts>: a key in one piece
	// must have been copied in one CopyObject, which no crash leaves
	// half done.
	info, err := d.client.StatObject(t.Context(), d.bucket, d.object(to), minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if multipart := strings.Contains(info.ETag, "-"); multipart != (len(ps) > 1) {
		t.Errorf("Move of %d pieces: ETag %q, want a multipart copy only for several pieces", len(ps), info.ETag)
	}
	if got := s3Objects(t, d); !slices.Equal(got, []string{to}) {
		t.Errorf("objects after Move = %q, want only %q", got, to)
	}
	if spooled, _ := os.ReadDir(spool); len(spooled) != 0 {
		t.Errorf("spool holds %d files after the writes, want none", len(spooled))
	}
}

// TestS3WriterRepairs checks the states a crash inside Commit can leave:
// pieces beyond the committed offset are dropped by the next Writer at
// that offset, and an uncommitted Writer's segments are deleted by Close.
func TestS3WriterRepairs(t *testing.T) {
	srv := s3test.Start(t)
	d, err := NewS3(t.Context(), s3Config(srv, "repair"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(12, 12<<20)
	putObject(t, d, "uploads/u2", data[:6<<20])
	// A second chunk whose Commit never happened: segments sent, then
	// the writer abandoned.
	w, err := d.Writer(t.Context(), "uploads/u2", 6<<20)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randomBytes(99, 6<<20))
	w.Close()
	wantObject(t, d, "uploads/u2", data[:6<<20])
	// A crash between sending the new pieces and deleting the old ones:
	// simulated by writing a stale extra segment past the end.
	extra := segName("uploads/u2", 50)
	if _, err := d.core.PutObject(t.Context(), d.bucket, d.object(extra), bytes.NewReader(randomBytes(98, 100)), 100, "", "", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err = d.Writer(t.Context(), "uploads/u2", 6<<20)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[6<<20:])
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	wantObject(t, d, "uploads/u2", data)
	for _, name := range s3Objects(t, d) {
		if strings.HasSuffix(name, "00000050") {
			t.Errorf("stale segment %s survived the Writer that dropped it", name)
		}
	}
}

// incompleteUploads counts the multipart uploads S3 holds under d's
// prefix.
func incompleteUploads(t *testing.T, d *S3) int {
	t.Helper()
	n := 0
	for up := range d.client.ListIncompleteUploads(t.Context(), d.bucket, d.prefix, true) {
		if up.Err != nil {
			t.Fatal(up.Err)
		}
		n++
	}
	return n
}

// TestS3StoreAtomicBlobs checks blobs whose digest is known before their
// bytes (POST ?digest=, or PUT with the whole body): they go straight to
// their key in one multipart upload that completes only once verified.
func TestS3StoreAtomicBlobs(t *testing.T) {
	srv := s3test.Start(t)
	st, drv := openS3Store(t, srv, "atomic")
	ctx := t.Context()
	for _, size := range []int{0, 1000, 12<<20 + 3} {
		data := randomBytes(uint64(size), size)
		d := digest.FromBytes(data)
		if _, err := st.PutBlob(ctx, "team/app", d, int64(size), bytes.NewReader(data)); err != nil {
			t.Fatalf("PutBlob(%d bytes) = %v", size, err)
		}
		wantObject(t, drv, blobKey(d), data)
		// The same blob again, in another repository: linked, not
		// written twice.
		if _, err := st.PutBlob(ctx, "team/other", d, -1, bytes.NewReader(data)); err != nil {
			t.Fatalf("PutBlob again = %v", err)
		}
		if _, err := st.StatBlob(ctx, "team/other", d); err != nil {
			t.Errorf("StatBlob(team/other) = %v", err)
		}
	}

	// A wrong digest or size: nothing becomes visible, nothing is left.
	data := randomBytes(5, 11<<20)
	wrong := digest.FromString("something else")
	if _, err := st.PutBlob(ctx, "team/app", wrong, -1, bytes.NewReader(data)); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("PutBlob(wrong digest) = %v, want ErrDigestMismatch", err)
	}
	if _, err := st.PutBlob(ctx, "team/app", digest.FromBytes(data), 100, bytes.NewReader(data)); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("PutBlob(wrong size) = %v, want ErrSizeMismatch", err)
	}
	for _, d := range []digest.Digest{wrong, digest.FromBytes(data)} {
		if _, err := drv.Stat(ctx, blobKey(d)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat(%s) after a refused PutBlob = %v, want ErrNotFound", d, err)
		}
	}
	if n := incompleteUploads(t, drv); n != 0 {
		t.Errorf("%d multipart uploads left after refused blobs, want 0", n)
	}

	// PUT with the whole body onto an empty session, then onto one that
	// already holds a chunk.
	up, err := st.StartUpload(ctx, "team/app", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.FinishUpload(ctx, "team/app", up.ID, digest.FromBytes(data), -1, bytes.NewReader(data)); err != nil {
		t.Fatalf("FinishUpload(empty session) = %v", err)
	}
	wantObject(t, drv, blobKey(digest.FromBytes(data)), data)
	if _, err := st.GetUpload(ctx, "team/app", up.ID); !errors.Is(err, ErrUploadNotFound) {
		t.Errorf("session after FinishUpload = %v, want ErrUploadNotFound", err)
	}
	more := randomBytes(6, 7<<20)
	up, _ = st.StartUpload(ctx, "team/app", "")
	if _, err := st.AppendUpload(ctx, "team/app", up.ID, 0, bytes.NewReader(more[:1<<20])); err != nil {
		t.Fatal(err)
	}
	if _, err := st.FinishUpload(ctx, "team/app", up.ID, digest.FromBytes(more), -1, bytes.NewReader(more[1<<20:])); err != nil {
		t.Fatalf("FinishUpload(session with a chunk) = %v", err)
	}
	// The chunk and the last bytes were two writes: sealed into one
	// object where the upload wrote them.
	wantObject(t, drv, uploadKey(up.ID), more)
	if got := st.location(digest.FromBytes(more)); got != uploadKey(up.ID) {
		t.Errorf("location of a chunked blob = %q, want its upload key %q", got, uploadKey(up.ID))
	}
	wantOnlyBlobs(t, st, srv)
}

// wantOnlyBlobs checks that the bucket holds exactly the keys of the blobs
// st records (a key in segments counts once), and no multipart upload.
func wantOnlyBlobs(t *testing.T, st *Store, srv *s3test.Server) {
	t.Helper()
	var want []string
	st.metaDB().View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlobs).ForEach(func(k, _ []byte) error {
			d, ok := decodeDigest(k)
			if !ok {
				t.Fatalf("blob record key %x: not a digest", k)
			}
			want = append(want, blobLocation(tx, d))
			return nil
		})
	})
	var got []string
	for _, prefix := range []string{"blobs", "uploads"} {
		st.blobs.Walk(t.Context(), prefix, func(key string, _ int64) error { got = append(got, key); return nil })
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("objects in the bucket = %q, want those of the recorded blobs, %q", got, want)
	}
	if ups := srv.MultipartUploads(); len(ups) != 0 {
		t.Errorf("multipart uploads in the bucket = %q, want none", ups)
	}
}

// TestS3AbandonedUploads leaves multipart uploads behind as faults do, on
// versitygw and on MinIO (which lists no uploads by prefix): one of a
// process that died with a part sent, and one whose abort failed while S3
// was frozen. The next start aborts the first, the next GC the second,
// and the bucket then holds no object and no multipart upload.
func TestS3AbandonedUploads(t *testing.T) {
	for _, kind := range []string{"versitygw", "minio"} {
		t.Run(kind, func(t *testing.T) {
			srv := s3test.StartKind(t, kind)
			cfg := Config{Driver: "s3", Root: t.TempDir(), S3: s3Config(srv, "abandoned")}
			cfg.S3.Timeout = "1s"
			st, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			sendPart := func(st *Store, key string) Writer {
				w, err := st.blobs.(*S3).AtomicWriter(t.Context(), key)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(randomBytes(1, 6<<20)); err != nil {
					t.Fatal(err)
				}
				if err := w.(*s3Multipart).flush.wait(); err != nil {
					t.Fatalf("first part = %v", err)
				}
				return w
			}
			sendPart(st, "blobs/sha256/ab/dead")
			st.Close() // the process dies with its upload open
			if n := len(srv.MultipartUploads()); n != 1 {
				t.Fatalf("%d multipart uploads after a part was sent, want 1", n)
			}
			st, err = Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if ups := srv.MultipartUploads(); len(ups) != 0 {
				t.Errorf("multipart uploads after a restart = %q, want none", ups)
			}

			w := sendPart(st, "blobs/sha256/ab/frozen")
			srv.Pause()
			w.Close() // the abort times out
			srv.Resume()
			if n, err := st.AbortMultipartUploads(t.Context()); n != 1 || err != nil {
				t.Errorf("AbortMultipartUploads = %d, %v; want 1, nil", n, err)
			}
			if ups := srv.MultipartUploads(); len(ups) != 0 {
				t.Errorf("multipart uploads after GC's abort = %q, want none", ups)
			}
			if objs := s3Objects(t, st.blobs.(*S3)); len(objs) != 0 {
				t.Errorf("objects left = %q, want none", objs)
			}
			if n, err := st.AbortMultipartUploads(t.Context()); n != 0 || err != nil {
				t.Errorf("AbortMultipartUploads again = %d, %v; want 0, nil", n, err)
			}
		})
	}
}

// TestS3SizedWriter checks writes of announced length: one segment
// streamed as it comes, merged with a small committed tail before it; a
// write that ends early fails its Commit and changes nothing.
func TestS3SizedWriter(t *testing.T) {
	srv := s3test.Start(t)
	spool := t.TempDir()
	d, err := NewS3(t.Context(), s3Config(srv, "sized"), spool)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	data := randomBytes(31, 40<<20)
	write := func(off, n int, announce int64) error {
		w, err := d.SizedWriter(ctx, "uploads/s1", int64(off), announce)
		if err != nil {
			return err
		}
		defer w.Close()
		for rest := data[off : off+n]; len(rest) > 0; {
			k := min(len(rest), 256<<10)
			if _, err := w.Write(rest[:k]); err != nil {
				return err
			}
			rest = rest[k:]
		}
		return w.Commit()
	}
	if err := write(0, 1<<20, 1<<20); err != nil {
		t.Fatalf("first chunk = %v", err)
	}
	// 1 MiB is under the 5 MiB minimum: the next write takes it along.
	if err := write(1<<20, 30<<20, 30<<20); err != nil {
		t.Fatalf("second chunk = %v", err)
	}
	ps, err := d.layout(ctx, "uploads/s1")
	if err != nil || len(ps) != 1 || ps[0].size != 31<<20 {
		t.Fatalf("layout after two sized writes = %+v, %v; want one 31 MiB segment", ps, err)
	}
	// A chunk announced at 9 MiB that stops at 4: Commit fails, the key
	// keeps its 31 MiB, and no piece of the failed write remains.
	if err := write(31<<20, 4<<20, 9<<20); !errors.Is(err, errDirectShort) {
		t.Errorf("short write = %v, want errDirectShort", err)
	}
	wantObject(t, d, "uploads/s1", data[:31<<20])
	if ps, _ := d.layout(ctx, "uploads/s1"); len(ps) != 1 {
		t.Errorf("layout after a short write = %+v, want the one segment", ps)
	}
	// More bytes than announced are refused.
	w, err := d.SizedWriter(ctx, "uploads/s1", 31<<20, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 11)); err == nil {
		t.Errorf("writing 11 bytes into a 10-byte write = nil error")
	}
	w.Close()
	if err := write(31<<20, 9<<20, 9<<20); err != nil {
		t.Fatalf("last chunk = %v", err)
	}
	wantObject(t, d, "uploads/s1", data)
	wantMovedAlone(t, d, spool, "uploads/s1", "blobs/sha256/cd/cdef", data)
}

// TestS3AppendToWholeObject appends to a key stored as one object of at
// least 5 MiB (a first chunk under the part size): the object becomes the
// first segment, so a read never stops at its end.
func TestS3AppendToWholeObject(t *testing.T) {
	srv := s3test.Start(t)
	cfg := s3Config(srv, "whole")
	cfg.PartSizeMiB = 8
	d, err := NewS3(t.Context(), cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(41, 9<<20)
	putObject(t, d, "uploads/w1", data[:6<<20])
	if ps, _ := d.layout(t.Context(), "uploads/w1"); len(ps) != 1 || ps[0].seg != 0 {
		t.Fatalf("layout after a 6 MiB write = %+v, want the key's own object", ps)
	}
	w, err := d.Writer(t.Context(), "uploads/w1", 6<<20)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[6<<20:])
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	ps, _ := d.layout(t.Context(), "uploads/w1")
	if len(ps) != 2 || ps[0].seg == 0 || ps[0].size != 6<<20 {
		t.Errorf("layout after appending = %+v, want two segments, the first the old object", ps)
	}
	wantObject(t, d, "uploads/w1", data)
	if err := d.Move(t.Context(), "uploads/w1", "blobs/sha256/ee/eeee"); err != nil {
		t.Fatal(err)
	}
	wantObject(t, d, "blobs/sha256/ee/eeee", data)
}

// TestS3MoveOnePiece finishes a chunked upload that went up as one
// segment: Move is a single CopyObject, not a multipart copy that a crash
// would leave unfinished.
func TestS3MoveOnePiece(t *testing.T) {
	srv := s3test.Start(t)
	spool := t.TempDir()
	d, err := NewS3(t.Context(), s3Config(srv, "onepiece"), spool)
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(51, 6<<20)
	w, err := d.SizedWriter(t.Context(), "uploads/p1", 0, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if ps, _ := d.layout(t.Context(), "uploads/p1"); len(ps) != 1 || ps[0].seg != 0 {
		t.Fatalf("layout after one sized write = %+v, want the key's own object", ps)
	}
	wantMovedAlone(t, d, spool, "uploads/p1", "blobs/sha256/12/1234", data)
}

// TestS3CommitOutlivesClient commits a chunked upload whose client has
// gone: the commit finishes anyway, so the bucket holds the blob, recorded,
// and nothing of the upload.
func TestS3CommitOutlivesClient(t *testing.T) {
	srv := s3test.Start(t)
	st, _ := openS3Store(t, srv, "detach")
	data := randomBytes(61, 7<<20)
	d := digest.FromBytes(data)
	up, err := st.StartUpload(t.Context(), "team/app", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendUpload(t.Context(), "team/app", up.ID, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.CommitUpload(gone, "team/app", up.ID, d); err != nil {
		t.Fatalf("CommitUpload(client gone) = %v, want the commit to finish", err)
	}
	if _, err := st.StatBlob(t.Context(), "team/app", d); err != nil {
		t.Errorf("StatBlob after the commit = %v", err)
	}
	wantOnlyBlobs(t, st, srv)
}

// TestS3LocatedBlobs pushes blobs whose digest comes last (POST, PATCH,
// PUT ?digest=): each stays where its upload wrote it, with no copy: one
// object that a single PATCH of unknown length streamed as a multipart
// upload, or the segments of two chunks. Reads, presigned URLs, the orphan
// scan and GC follow the recorded key; the same blob pushed again is not
// stored twice.
func TestS3LocatedBlobs(t *testing.T) {
	srv := s3test.Start(t)
	st, drv := openS3Store(t, srv, "located")
	ctx := t.Context()
	chunks := randomBytes(72, 12<<20)
	cd := digest.FromBytes(chunks)
	cup, _ := st.StartUpload(ctx, "team/chunks", "")
	for off := 0; off < len(chunks); off += 6 << 20 {
		if _, err := st.AppendUploadSized(ctx, "team/chunks", cup.ID, int64(off), 6<<20, bytes.NewReader(chunks[off:off+6<<20])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CommitUpload(ctx, "team/chunks", cup.ID, cd); err != nil {
		t.Fatalf("CommitUpload(two chunks) = %v", err)
	}
	if ps, _ := drv.layout(ctx, uploadKey(cup.ID)); len(ps) != 2 || ps[0].seg == 0 || st.location(cd) != uploadKey(cup.ID) {
		t.Errorf("two chunks: layout %+v at %q, want their two segments, recorded", ps, st.location(cd))
	}
	if rc, err := st.OpenBlob(ctx, cd, 0); err != nil {
		t.Error(err)
	} else if got, _ := io.ReadAll(rc); !bytes.Equal(got, chunks) {
		t.Errorf("OpenBlob(two chunks) = %d bytes, want the blob's %d", len(got), len(chunks))
	}
	drv.redirect = time.Minute
	data := randomBytes(71, 12<<20+5)
	d := digest.FromBytes(data)
	push := func(repo string) Upload {
		up, err := st.StartUpload(ctx, repo, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AppendUpload(ctx, repo, up.ID, 0, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CommitUpload(ctx, repo, up.ID, d); err != nil {
			t.Fatalf("CommitUpload = %v", err)
		}
		return up
	}
	up := push("team/app")
	if got := st.location(d); got != uploadKey(up.ID) {
		t.Fatalf("location = %q, want the upload's key %q", got, uploadKey(up.ID))
	}
	info, err := drv.client.StatObject(ctx, drv.bucket, drv.object(uploadKey(up.ID)), minio.StatObjectOptions{})
	if err != nil || !strings.HasSuffix(info.ETag, "-3") {
		t.Errorf("the blob's object: ETag %q, %v; want a multipart upload of 3 parts completed in place", info.ETag, err)
	}
	rc, err := st.OpenBlob(ctx, d, 5)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data[5:]) {
		t.Errorf("OpenBlob at 5 = %d bytes, want the blob's %d from there", len(got), len(data)-5)
	}
	if u, err := st.BlobURL(ctx, d); err != nil || !strings.Contains(u, uploadKey(up.ID)) {
		t.Errorf("BlobURL = %q, %v; want a presigned URL of the upload's key", u, err)
	}

	push("team/other") // the same bytes again: linked, its upload dropped
	wantOnlyBlobs(t, st, srv)
	err = st.ScanOrphanFiles(ctx, func(f GCFile) error {
		t.Errorf("orphan scan reports %s, a blob's object", f.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, link := range []struct {
		repo string
		d    digest.Digest
	}{{"team/app", d}, {"team/other", d}, {"team/chunks", cd}} {
		if err := st.DeleteBlob(ctx, link.repo, link.d); err != nil {
			t.Fatal(err)
		}
	}
	if deleted, err := st.CollectBlobs(ctx, []digest.Digest{d, cd}, time.Now().Add(time.Hour)); len(deleted) != 2 || err != nil {
		t.Fatalf("CollectBlobs = %v, %v; want both blobs", deleted, err)
	}
	if objs := s3Objects(t, drv); len(objs) != 0 {
		t.Errorf("objects after GC = %q, want none", objs)
	}
}
