package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Upload is the state of a resumable blob upload session.
type Upload struct {
	ID      string
	Repo    string
	Offset  int64 // bytes received so far
	Started time.Time
}

func uploadKey(id string) string { return "uploads/" + id }

// validUploadID reports whether id has the form StartUpload produces; ids
// become driver keys, so nothing else is accepted.
func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func newHash(alg digest.Algorithm) (hash.Hash, error) {
	switch alg {
	case digest.SHA256:
		return sha256.New(), nil
	case digest.SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("%w: unsupported algorithm %q", ErrDigestInvalid, alg)
}

// uploadLocks serialises writers of one upload session inside this process.
var uploadLocks [64]sync.Mutex

func lockUpload(id string) func() {
	m := stripeOf(id)
	m.Lock()
	return m.Unlock
}

// stripeOf is the lock of upload id, shared with other ids.
func stripeOf(id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &uploadLocks[h.Sum32()%uint32(len(uploadLocks))]
}

// StartUpload opens an upload session in repo. alg is the digest algorithm
// the client announced, or "" for sha256; another algorithm can still be
// named at commit time, at the cost of reading the data again.
func (s *Store) StartUpload(ctx context.Context, repo string, alg digest.Algorithm) (Upload, error) {
	if alg == "" {
		alg = digest.SHA256
	}
	h, err := newHash(alg)
	if err != nil {
		return Upload{}, err
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return Upload{}, err
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	now := time.Now()
	who := uploaderFrom(ctx)
	rec := uploadRecord{Repo: repo, Algorithm: string(alg), HashState: state, Started: now.UnixNano(),
		Owner: who.Owner, Client: who.Client}
	open := func() error {
		return s.commit.update(func(tx *bolt.Tx) error {
			if err := s.limits.admit(tx, who.Client); err != nil {
				return err
			}
			if err := putJSON(tx.Bucket(bucketUploads), []byte(id), rec); err != nil {
				return err
			}
			return countSession(tx, rec, 1)
		})
	}
	swept := s.sweepIdleUploads(ctx, now)
	err = open()
	if errors.Is(err, ErrTooManyUploads) && swept == 0 && s.sweepIdleUploads(ctx, time.Now()) > 0 {
		err = open()
	}
	if err != nil {
		return Upload{}, err
	}
	return Upload{ID: id, Repo: repo, Started: now}, nil
}

// uploadRecord returns session id of repo, or ErrUploadNotFound when there
// is none, when it belongs to another uploader than ctx's (a session with
// no owner belongs to all), or when it has been idle for longer than
// storage.upload_idle_expiry: a session may not be found by anyone else,
// nor revived once it is due to be swept.
func (s *Store) uploadRecord(ctx context.Context, repo, id string) (uploadRecord, error) {
	var rec uploadRecord
	if !validUploadID(id) {
		return rec, fmt.Errorf("%w: %q", ErrUploadNotFound, id)
	}
	err := s.view(func(tx *bolt.Tx) error {
		if !getJSON(tx.Bucket(bucketUploads), []byte(id), &rec) || rec.Repo != repo ||
			(rec.Owner != "" && rec.Owner != uploaderFrom(ctx).Owner) {
			return fmt.Errorf("%w: %s", ErrUploadNotFound, id)
		}
		if idle := s.limits.idle; idle > 0 && s.idleSince(id, rec, time.Now().Add(-idle)) {
			return fmt.Errorf("%w: %s expired after %s without a write (storage.upload_idle_expiry)", ErrUploadNotFound, id, idle)
		}
		return nil
	})
	return rec, err
}

// GetUpload returns the session id of repo, or ErrUploadNotFound. Like
// every call on an existing session, it finds only the sessions of ctx's
// Uploader (see WithUploader).
func (s *Store) GetUpload(ctx context.Context, repo, id string) (Upload, error) {
	rec, err := s.uploadRecord(ctx, repo, id)
	if err != nil {
		return Upload{}, err
	}
	return Upload{ID: id, Repo: repo, Offset: rec.Offset, Started: time.Unix(0, rec.Started)}, nil
}

// AppendUpload writes r to the end of upload id. offset is where the
// client says the chunk starts, or -1 to append wherever the upload ends;
// a mismatch returns ErrUploadOffset. If r fails midway (a client gone),
// the bytes received are kept and the session records them, so the client
// can resume; the read error is returned.
func (s *Store) AppendUpload(ctx context.Context, repo, id string, offset int64, r io.Reader) (Upload, error) {
	return s.AppendUploadSized(ctx, repo, id, offset, -1, r)
}

// AppendUploadSized is AppendUpload for a chunk of size bytes (-1 if
// unknown). With the size known, a driver may store the chunk in one
// piece; if the chunk then ends early, nothing of it is kept.
func (s *Store) AppendUploadSized(ctx context.Context, repo, id string, offset, size int64, r io.Reader) (_ Upload, err error) {
	defer lockUpload(id)()
	defer func() { s.discardIfFull(ctx, id, err) }()
	rec, err := s.uploadRecord(ctx, repo, id)
	if err != nil {
		return Upload{}, err
	}
	if offset >= 0 && offset != rec.Offset {
		return Upload{}, fmt.Errorf("%w: chunk starts at %d, upload holds %d bytes", ErrUploadOffset, offset, rec.Offset)
	}
	if r, err = s.capBody(rec.Offset, size, r); err != nil {
		s.discardUpload(ctx, id)
		return Upload{}, err
	}
	// However long the chunk takes, the session is not idle meanwhile.
	defer s.writing.add(id)()
	h, err := newHash(digest.Algorithm(rec.Algorithm))
	if err != nil {
		return Upload{}, err
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(rec.HashState); err != nil {
		return Upload{}, fmt.Errorf("upload %s: hash state: %w", id, err)
	}
	var w Writer
	if sw, ok := s.blobs.(SizedWriter); ok && size > 0 {
		w, err = sw.SizedWriter(ctx, uploadKey(id), rec.Offset, size)
	} else {
		w, err = s.blobs.Writer(ctx, uploadKey(id), rec.Offset)
	}
	if err != nil {
		return Upload{}, err
	}
	defer w.Close()
	n, copyErr := copyHashed(w, h, r)
	if errors.Is(copyErr, ErrBlobTooLarge) {
		w.Close()
		s.discardUpload(ctx, id)
		return Upload{}, copyErr
	}
	if n == 0 && copyErr != nil {
		return Upload{}, copyErr
	}
	if err := w.Commit(); err != nil {
		return Upload{}, err
	}
	rec.Offset += n
	rec.Touched = time.Now().UnixNano()
	if rec.HashState, err = h.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
		return Upload{}, err
	}
	err = s.commit.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketUploads), []byte(id), rec)
	})
	if err != nil {
		return Upload{}, err
	}
	up := Upload{ID: id, Repo: repo, Offset: rec.Offset, Started: time.Unix(0, rec.Started)}
	return up, copyErr
}

// CommitUpload verifies that upload id hashes to d, moves its bytes to the
// blob store and links the blob to repo, all or nothing. On a mismatch the
// session is discarded and ErrDigestMismatch returned.
func (s *Store) CommitUpload(ctx context.Context, repo, id string, d digest.Digest) (_ BlobInfo, err error) {
	if err := checkDigest(d); err != nil {
		return BlobInfo{}, err
	}
	defer lockUpload(id)()
	defer func() { s.discardIfFull(ctx, id, err) }()
	rec, err := s.uploadRecord(ctx, repo, id)
	if err != nil {
		return BlobInfo{}, err
	}
	got, err := s.uploadDigest(ctx, id, rec, d.Algorithm())
	if err != nil {
		return BlobInfo{}, err
	}
	if got != d {
		s.discardUpload(ctx, id)
		return BlobInfo{}, fmt.Errorf("%w: content is %s, client named %s", ErrDigestMismatch, got, d)
	}
	cctx, cancel := detach(ctx)
	defer cancel()
	return s.commitBlob(cctx, repo, id, d, rec.Offset)
}

// commitTimeout bounds the commit of a verified upload, which may copy
// gigabytes inside the blob store.
const commitTimeout = 15 * time.Minute

// detach returns a context for a commit: once one starts, it finishes or
// is undone whether or not the client waits for it, since a commit cut
// short leaves bytes in the blob store that no record names.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
}

// uploadDigest returns the digest of the upload's bytes under alg, from the
// running hash when the algorithms agree, else by reading the bytes again.
func (s *Store) uploadDigest(ctx context.Context, id string, rec uploadRecord, alg digest.Algorithm) (digest.Digest, error) {
	h, err := newHash(alg)
	if err != nil {
		return "", err
	}
	if string(alg) == rec.Algorithm {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(rec.HashState); err != nil {
			return "", err
		}
		return digest.NewDigest(alg, h), nil
	}
	if rec.Offset == 0 {
		return digest.NewDigest(alg, h), nil
	}
	rc, err := s.blobs.Reader(ctx, uploadKey(id), 0)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if _, err := io.CopyN(h, rc, rec.Offset); err != nil {
		return "", err
	}
	return digest.NewDigest(alg, h), nil
}

// commitBlob makes the verified bytes at uploads/id the blob d and links it
// to repo. A crash between the move and the metadata update leaves an
// unreferenced blob file that garbage collection removes.
func (s *Store) commitBlob(ctx context.Context, repo, id string, d digest.Digest, size int64) (BlobInfo, error) {
	// GC deletes a blob's record and file under the same lock, so the
	// existence check below stays true until the link commits.
	defer lockBlob(d)()
	m, moves := s.blobs.(unsyncedMover)
	if s.blobRecorded(d) {
		s.blobs.Delete(ctx, uploadKey(id))
	} else if size == 0 && !moves {
		// An empty upload may never have created a file.
		w, err := s.blobs.Writer(ctx, blobKey(d), 0)
		if err != nil {
			return BlobInfo{}, err
		}
		if err := w.Commit(); err != nil {
			return BlobInfo{}, err
		}
		s.blobs.Delete(ctx, uploadKey(id))
	} else if sl, ok := s.blobs.(Sealer); ok {
		whole, err := s.sealUpload(ctx, sl, id, d, size)
		if err != nil {
			return BlobInfo{}, err
		}
		info, err := s.recordBlob(repo, id, d, size, uploadKey(id), !whole)
		if err == nil && !whole {
			s.composeSoon()
		}
		return info, err
	} else {
		if size == 0 {
			// An empty upload may never have created a file. One is
			// made to be moved as any upload is, so that the directory
			// its name lands in is synced before the record.
			w, err := s.blobs.Writer(ctx, uploadKey(id), 0)
			if err != nil {
				return BlobInfo{}, err
			}
			if err := w.Commit(); err != nil {
				return BlobInfo{}, err
			}
		}
		var dirs []string
		var err error
		if moves {
			dirs, err = m.moveUnsynced(uploadKey(id), blobKey(d))
		} else {
			err = s.blobs.Move(ctx, uploadKey(id), blobKey(d))
		}
		if err != nil {
			// A copy may have landed before the failure: no record
			// names it, and the upload keeps its bytes for a retry.
			s.blobs.Delete(ctx, blobKey(d))
			return BlobInfo{}, err
		}
		if got, err := s.blobs.Stat(ctx, blobKey(d)); err != nil || got != size {
			// The bytes were hashed on their way in; the size check
			// guards what the driver assembled from them.
			s.blobs.Delete(ctx, blobKey(d))
			if err == nil {
				err = fmt.Errorf("blob %s: stored %d bytes, received %d", d, got, size)
			}
			return BlobInfo{}, err
		}
		return s.recordBlobIn(dirs, repo, id, d, size, "", false)
	}
	return s.recordBlob(repo, id, d, size, "", false)
}

// blobRecorded reports whether metadata holds blob d.
func (s *Store) blobRecorded(d digest.Digest) bool {
	var ok bool
	s.view(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketBlobs).Get(digestKey(d)) != nil
		return nil
	})
	return ok
}

// recordBlob records blob d of size bytes, whose bytes are in place at key
// ("" for its blob key), in pieces if pieced, links it to repo and ends
// upload session id. The caller holds lockBlob(d).
func (s *Store) recordBlob(repo, id string, d digest.Digest, size int64, key string, pieced bool) (BlobInfo, error) {
	return s.recordBlobIn(nil, repo, id, d, size, key, pieced)
}

// recordBlobIn is recordBlob for bytes whose name is durable only once
// directories dirs are synced: the commit syncs them first.
func (s *Store) recordBlobIn(dirs []string, repo, id string, d digest.Digest, size int64, key string, pieced bool) (BlobInfo, error) {
	now := time.Now()
	err := s.commit.updateAfterSync(dirs, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketBlobs).Get(digestKey(d)) == nil {
			if err := putBlobRecord(tx, d, blobRecord{Size: size, Created: now.UnixNano(), Key: key}); err != nil {
				return err
			}
			if pieced {
				if err := markPieced(tx, key, d); err != nil {
					return err
				}
			}
		}
		if err := deleteSession(tx, id); err != nil {
			return err
		}
		return link(tx, repo, d, now)
	})
	if err != nil {
		return BlobInfo{}, err
	}
	return BlobInfo{Digest: d, Size: size}, nil
}

// CancelUpload discards upload id and its bytes.
func (s *Store) CancelUpload(ctx context.Context, repo, id string) error {
	defer lockUpload(id)()
	if _, err := s.uploadRecord(ctx, repo, id); err != nil {
		return err
	}
	return s.discardUpload(ctx, id)
}

// discardIfFull discards upload id, whose lock the caller holds, when err
// says the storage is full: the client has to start over, and the partial
// bytes must not hold space on a full disk until the session expires.
func (s *Store) discardIfFull(ctx context.Context, id string, err error) {
	if errors.Is(err, ErrStorageFull) {
		s.discardUpload(context.WithoutCancel(ctx), id)
	}
}

func (s *Store) discardUpload(ctx context.Context, id string) error {
	if err := s.commit.update(func(tx *bolt.Tx) error {
		return deleteSession(tx, id)
	}); err != nil {
		return err
	}
	return s.blobs.Delete(ctx, uploadKey(id))
}

// FinishUpload is CommitUpload with a last chunk r of size bytes (-1 if
// unknown). When the upload holds nothing yet and the driver writes
// atomically, r goes straight to the blob's key.
func (s *Store) FinishUpload(ctx context.Context, repo, id string, d digest.Digest, size int64, r io.Reader) (BlobInfo, error) {
	if aw, ok := s.blobs.(AtomicWriter); ok {
		if err := checkDigest(d); err != nil {
			return BlobInfo{}, err
		}
		unlock := lockUpload(id)
		rec, err := s.uploadRecord(ctx, repo, id)
		if err != nil {
			unlock()
			return BlobInfo{}, err
		}
		if rec.Offset == 0 {
			defer unlock()
			defer s.writing.add(id)()
			info, err := s.putBlobAtomic(ctx, aw, repo, id, d, size, r, nil)
			if errors.Is(err, ErrDigestMismatch) || errors.Is(err, ErrSizeMismatch) || errors.Is(err, ErrBlobTooLarge) {
				s.discardUpload(ctx, id)
			}
			s.discardIfFull(ctx, id, err)
			return info, err
		}
		unlock()
	}
	if _, err := s.AppendUploadSized(ctx, repo, id, -1, size, r); err != nil {
		return BlobInfo{}, err
	}
	return s.CommitUpload(ctx, repo, id, d)
}

var (
	copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
	waitBuffers = sync.Pool{New: func() any { b := make([]byte, waitBufferSize); return &b }}
)

// waitBufferSize is what a body that sends nothing, or a trickle, holds
// while copyHashed waits for it: a client stalling thousands of uploads
// pins this much each, not a whole copy buffer.
const waitBufferSize = 16 << 10

// writeAlign is the size of the pages in which the kernel caches a file:
// a write that starts or ends inside a page it has not cached has that
// page's other bytes zeroed first.
const writeAlign = 4 << 10

// copyHashed copies r to w and h through pooled buffers, so memory per
// upload is fixed whatever the blob size. Each round waits for bytes with
// a small buffer and takes the large one only when that read comes back
// full, as it does while bytes flow. A large buffer is filled to end on a
// page boundary of what this call has written: the first read of a body
// returns what arrived with the request's headers, a few KB, and every
// large write after it would otherwise straddle pages. Any read error but
// io.EOF, io.ErrUnexpectedEOF from a truncated body included, is returned
// with the count of bytes copied before it.
func copyHashed(w io.Writer, h hash.Hash, r io.Reader) (int64, error) {
	var n int64
	for {
		wp := waitBuffers.Get().(*[]byte)
		k, rerr := r.Read(*wp)
		bp, buf := wp, *wp
		if k == len(buf) && rerr == nil {
			bp = copyBuffers.Get().(*[]byte)
			buf = (*bp)[:len(*bp)-int(n%writeAlign)]
			copy(buf, (*wp)[:k])
			waitBuffers.Put(wp)
			for k < len(buf) && rerr == nil {
				var m int
				m, rerr = r.Read(buf[k:])
				k += m
			}
		}
		var werr error
		if k > 0 {
			// Hash only what was stored: a failed write must not leave
			// the hash ahead of the count (and of a resumed upload).
			if _, werr = w.Write(buf[:k]); werr == nil {
				h.Write(buf[:k])
				n += int64(k)
			}
		}
		if bp == wp {
			waitBuffers.Put(wp)
		} else {
			copyBuffers.Put(bp)
		}
		switch {
		case werr != nil:
			return n, werr
		case rerr == io.EOF:
			return n, nil
		case rerr != nil:
			return n, rerr
		}
	}
}
