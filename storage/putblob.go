package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// BlobTap follows a blob while PutBlobTap writes it, so that readers can
// stream the bytes before the blob is committed. Its methods are called
// from the writing goroutine, in this order: Opened once, Wrote after
// every write, Verified at most once.
type BlobTap interface {
	// Opened gives a function that reads the bytes written so far, from
	// offset. It works until Verified returns or PutBlobTap fails.
	Opened(read func(offset int64) (io.ReadCloser, error))
	// Wrote reports that n bytes in all are written and readable.
	Wrote(n int64)
	// Verified reports that every byte is written and matches the digest
	// and size; making them durable and recording the blob follow, and
	// may still fail.
	Verified()
}

// followDir, under the data directory, holds a copy of each blob that
// PutBlobTap writes to a driver whose uploads cannot be read before they
// are whole (S3), for its tap's readers. Open empties it.
const followDir = "follow"

// PutBlob stores r as blob d in repo in one call, verifying the digest
// while streaming. size is the expected length, or -1 if unknown.
func (s *Store) PutBlob(ctx context.Context, repo string, d digest.Digest, size int64, r io.Reader) (BlobInfo, error) {
	return s.PutBlobTap(ctx, repo, d, size, r, nil)
}

// PutBlobTap is PutBlob that reports its progress to tap, if not nil. On
// the filesystem, tap's readers read the upload itself; on S3, a local
// copy made as the bytes arrive.
func (s *Store) PutBlobTap(ctx context.Context, repo string, d digest.Digest, size int64, r io.Reader, tap BlobTap) (BlobInfo, error) {
	if err := checkDigest(d); err != nil {
		return BlobInfo{}, err
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	if aw, ok := s.blobs.(AtomicWriter); ok {
		// No file under uploads/: S3 keeps the bytes in a multipart
		// upload, which the orphan scan never lists.
		if tap == nil {
			return s.putBlobAtomic(ctx, aw, repo, id, d, size, r, nil)
		}
		sp, err := s.newSpool(id, r, tap)
		if err != nil {
			return BlobInfo{}, err
		}
		defer sp.remove()
		return s.putBlobAtomic(ctx, aw, repo, id, d, size, sp, sp.verified)
	}
	// No session record names this file while the body arrives, which
	// may take longer than GC's grace.
	defer s.writing.add(id)()
	w, err := s.blobs.Writer(ctx, uploadKey(id), 0)
	if err != nil {
		return BlobInfo{}, err
	}
	defer w.Close()
	var dst io.Writer = w
	if tap != nil {
		tap.Opened(func(offset int64) (io.ReadCloser, error) {
			return s.blobs.Reader(ctx, uploadKey(id), offset)
		})
		dst = &tapWriter{w: w, tap: tap}
	}
	n, err := s.copyVerified(dst, d, size, r)
	if err != nil {
		w.Close()
		s.blobs.Delete(ctx, uploadKey(id))
		return BlobInfo{}, err
	}
	if tap != nil {
		tap.Verified()
	}
	if m, ok := s.blobs.(unsyncedMover); ok {
		return s.placeBlob(ctx, m, w, repo, id, d, n)
	}
	if err := w.Commit(); err != nil {
		s.blobs.Delete(ctx, uploadKey(id))
		return BlobInfo{}, err
	}
	return s.commitBlob(ctx, repo, id, d, n)
}

// placeBlob is commitBlob for the n verified bytes that w, still open,
// wrote at uploads/id: it moves them to blob d's key before it syncs them,
// so that on ext4 and XFS the file's sync makes the new name durable too,
// and the directory needs no sync of its own (moveBeforeSync); elsewhere
// the directory is synced before the record commits. Until
// that commit no record names the file, and lockBlob(d), held throughout,
// keeps another upload of d from replacing it: a crash leaves at most an
// orphan, which GC removes.
func (s *Store) placeBlob(ctx context.Context, m unsyncedMover, w Writer, repo, id string, d digest.Digest, n int64) (BlobInfo, error) {
	defer lockBlob(d)()
	if s.blobRecorded(d) {
		w.Close()
		s.blobs.Delete(ctx, uploadKey(id))
		return s.recordBlob(repo, id, d, n, "", false)
	}
	dirs, err := m.moveBeforeSync(uploadKey(id), blobKey(d))
	if err != nil {
		s.blobs.Delete(ctx, uploadKey(id))
		return BlobInfo{}, err
	}
	if err := w.Commit(); err != nil {
		s.blobs.Delete(ctx, blobKey(d))
		return BlobInfo{}, err
	}
	return s.recordBlobIn(dirs, repo, id, d, n, "", false)
}

// copyVerified copies r to w, within the store's blob size limit, and
// checks that what it copied is blob d of size bytes (-1 if unknown).
func (s *Store) copyVerified(w io.Writer, d digest.Digest, size int64, r io.Reader) (int64, error) {
	r, err := s.capBody(0, size, r)
	if err != nil {
		return 0, err
	}
	h, err := newHash(d.Algorithm())
	if err != nil {
		return 0, err
	}
	n, err := copyHashed(w, h, r)
	if err == nil {
		err = checkContent(d, h.Sum(nil), size, n)
	}
	return n, err
}

// checkContent compares n bytes hashing to sum with blob d of size bytes
// (-1 if unknown).
func checkContent(d digest.Digest, sum []byte, size, n int64) error {
	if got := digest.NewDigestFromBytes(d.Algorithm(), sum); got != d {
		return fmt.Errorf("%w: content is %s, client named %s", ErrDigestMismatch, got, d)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: got %d bytes, expected %d", ErrSizeMismatch, n, size)
	}
	return nil
}

// tapWriter reports every write to w to tap.
type tapWriter struct {
	w   io.Writer
	tap BlobTap
	n   int64
}

func (t *tapWriter) Write(p []byte) (int, error) {
	k, err := t.w.Write(p)
	t.n += int64(k)
	if k > 0 {
		t.tap.Wrote(t.n)
	}
	return k, err
}

// putBlobAtomic writes r straight to blob d's key, where it appears only
// once verified, then records it as commitBlob does and ends upload
// session id.
func (s *Store) putBlobAtomic(ctx context.Context, aw AtomicWriter, repo, id string, d digest.Digest, size int64, r io.Reader, verified func()) (BlobInfo, error) {
	w, err := aw.AtomicWriter(ctx, blobKey(d))
	if err != nil {
		return BlobInfo{}, err
	}
	defer w.Close()
	n, err := s.copyVerified(w, d, size, r)
	if err != nil {
		return BlobInfo{}, err
	}
	if verified != nil {
		verified()
	}
	// As in commitBlob: GC cannot delete d between the check and the
	// record. A blob already stored keeps its bytes; Close drops ours.
	defer lockBlob(d)()
	if !s.blobRecorded(d) {
		if err := w.Commit(); err != nil {
			return BlobInfo{}, err
		}
	}
	return s.recordBlob(repo, id, d, n, "", false)
}

// spool is the local copy of a blob PutBlobTap writes to S3, made as it
// reads the bytes, for its tap's readers. A failed local write stops the
// copy, not the blob: the tap then never hears Verified.
type spool struct {
	r      io.Reader
	f      *os.File
	tap    BlobTap
	n      int64
	broken bool
}

func (s *Store) newSpool(id string, r io.Reader, tap BlobTap) (*spool, error) {
	dir := filepath.Join(s.root, followDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, id)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, full(err)
	}
	tap.Opened(func(offset int64) (io.ReadCloser, error) {
		rf, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		if _, err := rf.Seek(offset, io.SeekStart); err != nil {
			rf.Close()
			return nil, err
		}
		return rf, nil
	})
	return &spool{r: r, f: f, tap: tap}, nil
}

func (sp *spool) Read(p []byte) (int, error) {
	n, err := sp.r.Read(p)
	if n > 0 && !sp.broken {
		if _, werr := sp.f.Write(p[:n]); werr != nil {
			sp.broken = true
		} else {
			sp.n += int64(n)
			sp.tap.Wrote(sp.n)
		}
	}
	return n, err
}

func (sp *spool) verified() {
	if !sp.broken {
		sp.tap.Verified()
	}
}

// remove deletes the copy; its readers keep what they opened.
func (sp *spool) remove() {
	sp.f.Close()
	os.Remove(sp.f.Name())
}
