package storage

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
)

// AtomicWriter is implemented by drivers that can write a key so that it
// appears only when complete, as S3 multipart uploads do. Store then writes
// a blob whose digest it knows before the bytes arrive straight to its
// key, with no upload key to move from.
type AtomicWriter interface {
	// AtomicWriter opens key for writing from its start. Nothing is
	// visible at key until Commit, which replaces any object there at
	// once; Close without Commit leaves key as it was and nothing
	// behind.
	AtomicWriter(ctx context.Context, key string) (Writer, error)
}

// s3Multipart writes one object as a multipart upload: parts are spooled
// on local disk and sent in the background while the next one fills, and
// CompleteMultipartUpload makes the object appear. Content smaller than
// one part goes up in a single PUT at Commit.
type s3Multipart struct {
	s   *S3
	ctx context.Context
	key string

	id    string // upload id, once the first part is sent
	parts []minio.CompletePart

	f    *os.File
	size int64

	flush inFlight // the part being sent, if any
	err   error
	done  bool
}

// AtomicWriter implements AtomicWriter.
func (s *S3) AtomicWriter(ctx context.Context, key string) (Writer, error) {
	f, err := os.CreateTemp(s.spool, "part-*")
	if err != nil {
		return nil, err
	}
	return &s3Multipart{s: s, ctx: context.WithoutCancel(ctx), key: key, f: f}, nil
}

func (w *s3Multipart) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errors.New("s3 writer: write after close")
	}
	n, err := w.f.Write(p)
	err = full(err) // the spool is on local disk
	w.size += int64(n)
	if err == nil && w.size >= w.s.partSize {
		err = w.sendPart()
	}
	if err != nil {
		w.err = err
	}
	return n, err
}

// sendPart sends the spool as the next part in the background and starts
// an empty spool. At most one part is in flight.
func (w *s3Multipart) sendPart() error {
	if err := w.flush.wait(); err != nil {
		return err
	}
	if w.id == "" {
		id, err := w.s.core.NewMultipartUpload(w.ctx, w.s.bucket, w.s.object(w.key), minio.PutObjectOptions{ContentType: "application/octet-stream"})
		if err != nil {
			return s3Error("create upload", w.key, err)
		}
		w.id = id
	}
	f, size, n := w.f, w.size, len(w.parts)+1
	next, err := os.CreateTemp(w.s.spool, "part-*")
	if err != nil {
		return err
	}
	w.f, w.size = next, 0
	w.parts = append(w.parts, minio.CompletePart{PartNumber: n})
	w.flush.start(func() error {
		defer removeSpool(f)
		part, err := w.s.core.PutObjectPart(w.ctx, w.s.bucket, w.s.object(w.key), w.id, n, newSpoolReader(f, size), size, minio.PutObjectPartOptions{})
		w.parts[n-1].ETag = part.ETag
		return s3Error("put part", w.key, err)
	})
	return nil
}

// Commit sends the last part and completes the upload.
func (w *s3Multipart) Commit() error {
	if w.done {
		return nil
	}
	err := w.finish()
	if err != nil {
		w.Close()
		return err
	}
	w.done = true
	return nil
}

func (w *s3Multipart) finish() error {
	if w.err != nil {
		return w.err
	}
	if err := w.flush.wait(); err != nil {
		return err
	}
	if w.id == "" {
		f := w.f
		w.f = nil
		return w.s.putFile(w.ctx, w.key, w.s.object(w.key), f, w.size)
	}
	if w.size > 0 {
		if err := w.sendPart(); err != nil {
			return err
		}
		if err := w.flush.wait(); err != nil {
			return err
		}
	}
	removeSpool(w.f)
	w.f = nil
	_, err := w.s.core.CompleteMultipartUpload(w.ctx, w.s.bucket, w.s.object(w.key), w.id, w.parts, minio.PutObjectOptions{})
	return s3Error("complete upload", w.key, err)
}

// Close abandons an uncommitted write and aborts its multipart upload.
func (w *s3Multipart) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.flush.wait()
	if w.f != nil {
		removeSpool(w.f)
		w.f = nil
	}
	if w.id != "" {
		w.s.core.AbortMultipartUpload(w.ctx, w.s.bucket, w.s.object(w.key), w.id)
	}
	return nil
}

// abortStale aborts multipart uploads under the prefix started before
// cutoff: those of a process that died before completing or aborting
// them, which S3 would otherwise keep (and bill) forever.
func (s *S3) abortStale(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	for up := range s.client.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		if up.Err != nil {
			return n, s3Error("list uploads", s.prefix, up.Err)
		}
		if up.Initiated.After(cutoff) {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.bucket, up.Key, up.UploadID); err != nil {
			return n, s3Error("abort upload", up.Key, err)
		}
		n++
	}
	return n, nil
}
