package storage

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
	dto "github.com/prometheus/client_model/go"
	bolt "go.etcd.io/bbolt"

	"github.com/nora-registry/nora/storage/s3test"
)

// s3Copies counts the server-side copies the driver has asked for.
func s3Copies(d *S3) float64 {
	var n float64
	for _, op := range []string{"CopyObject", "UploadPartCopy"} {
		var m dto.Metric
		d.metrics.requests.WithLabelValues(op).Write(&m)
		n += m.GetCounter().GetValue()
	}
	return n
}

// pushChunks pushes data to repo in chunks of chunk bytes, each of known
// length, as docker and ggcr do, and returns the upload's id and the
// server-side copies its commit asked for.
func pushChunks(t *testing.T, st *Store, repo string, data []byte, chunk int) (string, float64) {
	t.Helper()
	ctx := t.Context()
	up, err := st.StartUpload(ctx, repo, "")
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		if _, err := st.AppendUploadSized(ctx, repo, up.ID, int64(off), int64(end-off), bytes.NewReader(data[off:end])); err != nil {
			t.Fatal(err)
		}
	}
	before := s3Copies(st.blobs.(*S3))
	if _, err := st.CommitUpload(ctx, repo, up.ID, digest.FromBytes(data)); err != nil {
		t.Fatalf("CommitUpload = %v", err)
	}
	return up.ID, s3Copies(st.blobs.(*S3)) - before
}

// readBlobAt returns the bytes of blob d from offset.
func readBlobAt(t *testing.T, st *Store, d digest.Digest, offset int64) []byte {
	t.Helper()
	rc, err := st.OpenBlob(t.Context(), d, offset)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func piecedKeys(st *Store) []string {
	var keys []string
	st.metaDB().View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketPieced); b != nil {
			b.ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
		}
		return nil
	})
	return keys
}

// TestS3ComposeBlobs pushes blobs in chunks with redirects on: the commit
// copies nothing and the blob is served from its segments, never
// redirected, until ComposeBlobs makes it one object; a GET then
// redirects to a URL serving its bytes, and the bucket holds only the
// blobs' objects.
func TestS3ComposeBlobs(t *testing.T) {
	for _, kind := range []string{"versitygw", "minio"} {
		t.Run(kind, func(t *testing.T) {
			srv := s3test.StartKind(t, kind)
			st, drv := openS3Store(t, srv, "compose")
			drv.redirect = time.Minute
			ctx := t.Context()
			data := randomBytes(81, 17<<20+3)
			d := digest.FromBytes(data)
			id, n := pushChunks(t, st, "team/app", data, 6<<20)
			if n != 0 {
				t.Errorf("server-side copies at commit = %v, want none", n)
			}
			if ps, _ := drv.layout(ctx, uploadKey(id)); len(ps) != 3 || ps[0].seg == 0 {
				t.Errorf("layout after commit = %+v, want the three segments", ps)
			}
			if u, err := st.BlobURL(ctx, d); u != "" || err != nil {
				t.Errorf("BlobURL in pieces = %q, %v; want \"\": the registry serves it", u, err)
			}
			if got := readBlobAt(t, st, d, 7<<20); !bytes.Equal(got, data[7<<20:]) {
				t.Errorf("OpenBlob at 7 MiB in pieces = %d bytes, want %d", len(got), len(data)-7<<20)
			}

			// A read under way while the segments are composed and
			// deleted goes on in the object.
			rc, err := st.OpenBlob(ctx, d, 0)
			if err != nil {
				t.Fatal(err)
			}
			head := make([]byte, 1<<20)
			if _, err := io.ReadFull(rc, head); err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				st.ComposeBlobs(cctx, func(err error) { t.Errorf("ComposeBlobs: %v", err) })
			}()
			defer func() { cancel(); <-done }()
			var u string
			for deadline := time.Now().Add(time.Minute); u == ""; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("blob still in pieces a minute after ComposeBlobs started")
				}
				if u, err = st.BlobURL(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			rest, err := io.ReadAll(rc)
			rc.Close()
			if got := append(head, rest...); err != nil || !bytes.Equal(got, data) {
				t.Errorf("read across the composition = %d bytes, %v; want the blob's %d", len(got), err, len(data))
			}
			if !strings.Contains(u, uploadKey(id)) {
				t.Errorf("BlobURL = %q, want a presigned URL of the upload's key", u)
			}
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
				t.Errorf("GET of the presigned URL = %s, %d bytes; want 200 and the blob", resp.Status, len(got))
			}
			if ps, _ := drv.layout(ctx, uploadKey(id)); len(ps) != 1 || ps[0].seg != 0 {
				t.Errorf("layout after composition = %+v, want one object", ps)
			}
			if keys := piecedKeys(st); len(keys) != 0 {
				t.Errorf("blobs recorded in pieces after composition: %q", keys)
			}
			wantOnlyBlobs(t, st, srv)
		})
	}
}

// TestS3ComposeLeftovers composes after the faults a crash or a garbage
// collection leave: a copy that landed before its segments were deleted
// costs no second copy, and a blob deleted while composed leaves nothing,
// even an object its copy completed after the deletion.
func TestS3ComposeLeftovers(t *testing.T) {
	srv := s3test.Start(t)
	st, drv := openS3Store(t, srv, "leftovers")
	drv.redirect = time.Minute
	ctx := t.Context()

	// Crash after the copy, before the segments went.
	data := randomBytes(82, 11<<20)
	d := digest.FromBytes(data)
	id, _ := pushChunks(t, st, "team/app", data, 6<<20)
	segs, _ := drv.segments(ctx, uploadKey(id))
	if err := drv.copyPieces(ctx, uploadKey(id), segs); err != nil {
		t.Fatal(err)
	}
	before := s3Copies(drv)
	if err := st.composeRound(ctx, drv, func(err error) { t.Errorf("composeRound: %v", err) }); err != nil {
		t.Fatal(err)
	}
	if n := s3Copies(drv) - before; n != 0 {
		t.Errorf("copies composing a blob already copied = %v, want none", n)
	}
	if got := readBlob(t, st, "team/app", d); !bytes.Equal(got, data) {
		t.Errorf("blob after composition = %d bytes, want %d", len(got), len(data))
	}
	if u, _ := st.BlobURL(ctx, d); u == "" {
		t.Errorf("BlobURL after composition = \"\", want a presigned URL")
	}
	wantOnlyBlobs(t, st, srv)

	// A blob left in segments by a release that did not record so.
	old := randomBytes(84, 11<<20)
	od := digest.FromBytes(old)
	oid, _ := pushChunks(t, st, "team/app", old, 6<<20)
	st.metaDB().Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPieced).Delete([]byte(uploadKey(oid))) })
	if err := st.markSegmented(ctx, drv); err != nil {
		t.Fatal(err)
	}
	if keys := piecedKeys(st); !slices.Equal(keys, []string{uploadKey(oid)}) {
		t.Errorf("blobs recorded in pieces after the scan = %q, want %q", keys, uploadKey(oid))
	}
	if err := st.composeRound(ctx, drv, func(err error) { t.Errorf("composeRound: %v", err) }); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, st, "team/app", od); !bytes.Equal(got, old) {
		t.Errorf("blob after composition = %d bytes, want %d", len(got), len(old))
	}
	wantOnlyBlobs(t, st, srv)

	// GC deletes a blob whose copy then completes.
	gone := randomBytes(83, 11<<20)
	gd := digest.FromBytes(gone)
	gid, _ := pushChunks(t, st, "team/gone", gone, 6<<20)
	p := pieced{key: uploadKey(gid), d: gd}
	if err := st.DeleteBlob(ctx, "team/gone", gd); err != nil {
		t.Fatal(err)
	}
	if deleted, err := st.CollectBlobs(ctx, []digest.Digest{gd}, time.Now().Add(time.Hour)); len(deleted) != 1 || err != nil {
		t.Fatalf("CollectBlobs = %v, %v; want the blob", deleted, err)
	}
	_, err := drv.client.PutObject(ctx, drv.bucket, drv.object(p.key), bytes.NewReader(gone), int64(len(gone)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.settleComposed(ctx, drv, p, nil); err != nil {
		t.Errorf("settleComposed = %v", err)
	}
	if keys := piecedKeys(st); len(keys) != 0 {
		t.Errorf("blobs recorded in pieces = %q, want none", keys)
	}
	wantOnlyBlobs(t, st, srv)
	if got := readBlob(t, st, "team/app", d); !bytes.Equal(got, data) {
		t.Errorf("the other blob = %d bytes, want %d", len(got), len(data))
	}
}
