package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// bucketPieced holds driver key → digest for every blob whose bytes are
// still in several objects: on S3, the segments of a chunked upload,
// which Seal leaves where they are so the push pays no copy. A presigned
// URL serves one object, so such a blob is served by the registry, and
// with redirects on ComposeBlobs copies its segments into the key's own
// object in the background. The record is what BlobURL checks: one read
// in the transaction that finds the blob's key, no request to S3.
var bucketPieced = []byte("pieced")

// markPieced records that blob d's bytes at key are in pieces.
func markPieced(tx *bolt.Tx, key string, d digest.Digest) error {
	b, err := tx.CreateBucketIfNotExists(bucketPieced)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), []byte(d))
}

// piecedAt reports whether blob d is recorded with its bytes in pieces at
// key.
func piecedAt(tx *bolt.Tx, key string, d digest.Digest) bool {
	b := tx.Bucket(bucketPieced)
	return b != nil && string(b.Get([]byte(key))) == string(d) && blobLocation(tx, d) == key
}

// inPieces reports whether the bytes at key are a blob's, in pieces.
func inPieces(tx *bolt.Tx, key string) bool {
	b := tx.Bucket(bucketPieced)
	return b != nil && b.Get([]byte(key)) != nil
}

// composeQueue says when the next round of compositions is due.
type composeQueue struct {
	mu    sync.Mutex
	due   time.Time // zero: none
	delay time.Duration
	wake  chan struct{}
}

func newComposeQueue(delay time.Duration) *composeQueue {
	return &composeQueue{delay: delay, wake: make(chan struct{}, 1)}
}

// at asks for a round at t, or earlier if one is due before.
func (q *composeQueue) at(t time.Time) {
	q.mu.Lock()
	if q.due.IsZero() || t.Before(q.due) {
		q.due = t
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns how long until the next round is due, and whether one is
// asked for at all. A round due now is taken: the next needs a new ask.
func (q *composeQueue) take(now time.Time) (time.Duration, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.due.IsZero() {
		return 0, false
	}
	if wait := q.due.Sub(now); wait > 0 {
		return wait, true
	}
	q.due = time.Time{}
	return 0, true
}

// composeSoon asks for a round after a chunked blob was committed in
// pieces, once storage.s3.compose_delay has passed: the rest of a push
// lands first, and a blob pushed and pulled at once is read from its
// segments rather than waiting for a copy.
func (s *Store) composeSoon() {
	if d, ok := s.blobs.(*S3); ok {
		d.composing.at(time.Now().Add(d.composing.delay))
	}
}

// WakeComposer asks ComposeBlobs for a round now, for any blob left in
// pieces: garbage collection calls it after each pass, so a composition
// that failed or was cut short is tried again. Without a ComposeBlobs
// running it does nothing.
func (s *Store) WakeComposer() {
	if d, ok := s.blobs.(*S3); ok {
		d.composing.at(time.Now())
	}
}

const (
	// composeBatch bounds the blobs one round reads from metadata.
	composeBatch = 100
	// composeMaxPause bounds the pause after one composition.
	composeMaxPause = time.Minute
)

// ComposeBlobs runs until ctx is done, composing each blob S3 holds in
// pieces into one object, so that GETs of it redirect: once at start, for
// those a crash or an earlier process left, then after each commit that
// leaves one (composeSoon) and each WakeComposer. Compositions run one at
// a time, each followed by a pause as long as it took, so they take at
// most half of the time of an S3 server that clients also use. Failures
// go to onErr; the blob stays readable from its pieces and is tried again
// at the next round. It returns at once unless the driver is S3 with
// redirects on.
func (s *Store) ComposeBlobs(ctx context.Context, onErr func(error)) {
	d, ok := s.blobs.(*S3)
	if !ok || d.redirect == 0 {
		return
	}
	if err := s.markSegmented(ctx, d); err != nil {
		onErr(err)
	}
	q := d.composing
	q.at(time.Now())
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait, asked := q.take(time.Now())
		if asked && wait == 0 {
			if err := s.composeRound(ctx, d, onErr); err != nil {
				return
			}
			continue
		}
		var tick <-chan time.Time
		if asked {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-tick:
		}
	}
}

// markSegmented records in pieces the blobs whose keys have segments
// but no such record: those pushed in chunks by a release that recorded
// none, or with redirects off by one that copied them only with
// redirects on. It lists the upload keys once, at start.
func (s *Store) markSegmented(ctx context.Context, d *S3) error {
	var keys []string
	base := d.object("uploads/")
	for obj := range d.client.ListObjects(ctx, d.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if obj.Err != nil {
			return s3Error("list", "uploads/", obj.Err)
		}
		key, _, seg := strings.Cut(strings.TrimPrefix(obj.Key, d.prefix), segMarker)
		if seg && (len(keys) == 0 || keys[len(keys)-1] != key) {
			keys = append(keys, key)
		}
	}
	for len(keys) > 0 {
		batch := keys[:min(len(keys), composeBatch)]
		keys = keys[len(batch):]
		err := s.commit.update(func(tx *bolt.Tx) error {
			located := tx.Bucket(bucketBlobKeys)
			for _, key := range batch {
				if located == nil || inPieces(tx, key) {
					continue
				}
				if dg := located.Get([]byte(key)); dg != nil {
					if err := markPieced(tx, key, digest.Digest(dg)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// composeRound composes the blobs recorded in pieces, one at a time. It
// returns an error only when ctx is done or metadata is closed.
func (s *Store) composeRound(ctx context.Context, d *S3, onErr func(error)) error {
	failed := map[string]bool{}
	for {
		var todo []pieced
		err := s.view(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketPieced)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil && len(todo) < composeBatch; k, v = c.Next() {
				if !failed[string(k)] {
					todo = append(todo, pieced{string(k), digest.Digest(v)})
				}
			}
			return nil
		})
		if err != nil || len(todo) == 0 {
			return err
		}
		for _, p := range todo {
			start := time.Now()
			if err := s.composeBlob(ctx, d, p); err != nil {
				if ctx.Err() != nil || errors.Is(err, bolt.ErrDatabaseNotOpen) {
					return err
				}
				failed[p.key] = true
				onErr(err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(time.Since(start), composeMaxPause)):
			}
		}
	}
}

// pieced is a blob recorded in pieces.
type pieced struct {
	key string
	d   digest.Digest
}

// composeBlob makes blob p one object at its key, then records it so.
// The copy runs without the blob's lock, which a push of another blob of
// the same stripe would wait for; settling takes it, and undoes the copy
// if garbage collection deleted the blob meanwhile.
func (s *Store) composeBlob(ctx context.Context, d *S3, p pieced) error {
	var size int64
	var ok bool
	s.view(func(tx *bolt.Tx) error {
		rec, found := decodeBlobRecord(tx.Bucket(bucketBlobs).Get(digestKey(p.d)))
		size, ok = rec.Size, found && piecedAt(tx, p.key, p.d)
		return nil
	})
	if !ok {
		return s.settleComposed(ctx, d, p, nil)
	}
	cctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	err := d.composeSegments(cctx, p.key, size)
	return s.settleComposed(ctx, d, p, err)
}

// settleComposed ends the composition of blob p, whose copy returned
// err: under the blob's lock, a blob still recorded is recorded as one
// object (if the copy succeeded), and one garbage collection deleted has
// whatever the copy wrote deleted too, so nothing outlives its record.
func (s *Store) settleComposed(ctx context.Context, d *S3, p pieced, err error) error {
	defer lockBlob(p.d)()
	var recorded, located bool
	if verr := s.view(func(tx *bolt.Tx) error {
		recorded, located = piecedAt(tx, p.key, p.d), locatedBlob(tx, p.key)
		return nil
	}); verr != nil {
		return verr
	}
	switch {
	case !recorded && located:
		// A blob's bytes, recorded as one object already.
		return nil
	case !recorded:
		if derr := d.Delete(context.WithoutCancel(ctx), p.key); derr != nil {
			return fmt.Errorf("blob %s deleted while composed: %w", p.d, derr)
		}
	case err != nil:
		return fmt.Errorf("compose blob %s: %w", p.d, err)
	}
	return s.unmarkPieced(p)
}

// unmarkPieced drops the record that p's bytes are in pieces, if it is
// still p's.
func (s *Store) unmarkPieced(p pieced) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPieced)
		if b == nil || string(b.Get([]byte(p.key))) != string(p.d) {
			return nil
		}
		return b.Delete([]byte(p.key))
	})
}

// composeSegments makes key's own object hold the bytes of its segments,
// size in all, then deletes the segments: from the moment the object
// appears, whole, Reader reads it rather than the segments, and a reader
// already in the segments goes on in the object. An object of size bytes
// already there, from a composition cut short before the segments went,
// costs no copy.
func (s *S3) composeSegments(ctx context.Context, key string, size int64) error {
	ps, err := s.layout(ctx, key)
	if err != nil {
		return err
	}
	var segs []piece
	whole := false
	for _, p := range ps {
		if p.seg == 0 {
			whole = p.size == size
		} else {
			segs = append(segs, p)
		}
	}
	if !whole {
		if got := total(segs); len(segs) == 0 || got != size {
			return fmt.Errorf("%w: %s: segments hold %d bytes, want %d", ErrNotFound, key, got, size)
		}
		if err := s.copyPieces(ctx, key, segs); err != nil {
			return s3Error("compose", key, err)
		}
	}
	return s.removePieces(ctx, key, segs)
}
