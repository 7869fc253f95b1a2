package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"os"

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

	flush  inFlight // the part being sent, if any
	unsure bool     // a part request failed: the server may hold it
	err    error
	done   bool
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
		id, err := w.s.beginUpload(w.ctx, w.key)
		if err != nil {
			return err
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
		if err != nil {
			// The server may still store the part after an abort.
			w.unsure = true
		}
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
	if err != nil {
		return s3Error("complete upload", w.key, err)
	}
	w.s.endUpload(w.id)
	return nil
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
		w.s.abandonUpload(w.ctx, w.key, w.id, w.unsure)
	}
	return nil
}

// beginUpload starts a multipart upload of key and records it in the
// journal before any part is sent. An intent recorded before the request
// covers a crash before its answer is recorded.
func (s *S3) beginUpload(ctx context.Context, key string) (string, error) {
	token := rand.Text()
	if s.journal != nil {
		s.live.add(token)
		defer s.live.remove(token)
		if err := s.journal.intend(token, key); err != nil {
			return "", err
		}
	}
	// Until the id is live, abortUploadsOf waits: it would take the
	// upload for a dead process's.
	s.beginning.RLock()
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, s.object(key), minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err == nil {
		s.live.add(id)
	}
	s.beginning.RUnlock()
	if err != nil {
		if s.journal != nil {
			// The request may have begun an upload all the same: the
			// intent stays for the next abort to look for it.
			if minio.ToErrorResponse(err).StatusCode/100 == 4 {
				s.journal.drop(token)
			}
		}
		return "", s3Error("create upload", key, err)
	}
	if s.journal != nil {
		if err := s.journal.begin(key, id, token); err != nil {
			s.abortUpload(ctx, key, id)
			s.live.remove(id)
			return "", err
		}
	}
	return id, nil
}

// abortUploadsOf aborts the multipart uploads of key that no writer of
// this process is sending, and returns how many it aborted.
func (s *S3) abortUploadsOf(ctx context.Context, key string) (int, error) {
	s.beginning.Lock()
	defer s.beginning.Unlock()
	obj := s.object(key)
	var ids []string
	keyMarker, idMarker := "", ""
	for {
		res, err := s.core.ListMultipartUploads(ctx, s.bucket, obj, keyMarker, idMarker, "", 1000)
		if err != nil {
			return 0, s3Error("list uploads", key, err)
		}
		for _, u := range res.Uploads {
			if u.Key == obj && !s.live.has(u.UploadID) {
				ids = append(ids, u.UploadID)
			}
		}
		if !res.IsTruncated || res.NextKeyMarker == "" && res.NextUploadIDMarker == "" {
			break
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
	n := 0
	for _, id := range ids {
		if err := s.abortUpload(ctx, key, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// endUpload forgets upload id, completed or aborted.
func (s *S3) endUpload(id string) {
	if s.journal != nil {
		s.journal.end(id)
	}
	s.live.remove(id)
}

// abandonUpload aborts upload id of key once no part of it is in flight
// from this process. The journal keeps it when the abort failed, or when
// a part request failed without an answer: the server may still be
// storing that part, which survives an abort sent before it lands, so
// the next garbage collection or start aborts it again, as S3's
// documentation advises.
func (s *S3) abandonUpload(ctx context.Context, key, id string, unsure bool) {
	if err := s.abortUpload(ctx, key, id); err != nil || unsure {
		s.live.remove(id)
		return
	}
	s.endUpload(id)
}

// abortUpload aborts upload id of key; one the server no longer knows is
// aborted already.
func (s *S3) abortUpload(ctx context.Context, key, id string) error {
	err := s3Error("abort upload", key, s.core.AbortMultipartUpload(ctx, s.bucket, s.object(key), id))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// compose copies pieces, each at most 5 GiB, into key with a multipart
// copy that the journal records like any other multipart upload.
func (s *S3) compose(ctx context.Context, key string, ps []piece) error {
	id, err := s.beginUpload(ctx, key)
	if err != nil {
		return err
	}
	parts := make([]minio.CompletePart, len(ps))
	for i, p := range ps {
		parts[i], err = s.core.CopyObjectPart(ctx, s.bucket, p.name, s.bucket, s.object(key), id, i+1, 0, p.size, nil)
		if err != nil {
			s.abandonUpload(ctx, key, id, true)
			return s3Error("copy part", key, err)
		}
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, s.object(key), id, parts, minio.PutObjectOptions{}); err != nil {
		s.abandonUpload(ctx, key, id, true)
		return s3Error("complete upload", key, err)
	}
	s.endUpload(id)
	return nil
}
