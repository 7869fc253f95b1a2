package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Uploader is who opens an upload session. Owner alone may use the
// session afterwards; Client is what the per-client cap on open sessions
// counts (the owner, or for anonymous callers their address).
type Uploader struct {
	Owner  string
	Client string
}

type uploaderKey struct{}

// WithUploader returns ctx carrying u: StartUpload records u as the
// session's owner and counts it against u's cap, and every other session
// call answers ErrUploadNotFound to anyone but the owner. Without an
// Uploader, a session is open to any caller, as sessions made before
// owners were recorded are.
func WithUploader(ctx context.Context, u Uploader) context.Context {
	return context.WithValue(ctx, uploaderKey{}, u)
}

func uploaderFrom(ctx context.Context) Uploader {
	u, _ := ctx.Value(uploaderKey{}).(Uploader)
	return u
}

// uploadLimits are the [storage] caps on upload sessions and blob sizes;
// zero values mean no cap.
type uploadLimits struct {
	total, perClient int
	maxBlob          int64
	idle             time.Duration
	lastSweep        atomic.Int64 // UnixNano of the last idle sweep
}

// bucketUploadCounts holds the number of open sessions in total (key
// countTotal) and per client ("c " + client), kept in the transactions
// that open and end sessions, so admitting one costs two reads.
var (
	bucketUploadCounts = []byte("uploadcounts")
	countTotal         = []byte("t")
)

func clientCountKey(client string) []byte { return []byte("c " + client) }

func addCount(b *bolt.Bucket, key []byte, delta int64) error {
	n := int64(0)
	if v := b.Get(key); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	if n += delta; n <= 0 {
		return b.Delete(key)
	}
	return b.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

func getCount(b *bolt.Bucket, key []byte) int64 {
	if v := b.Get(key); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// countSession adds delta to the open sessions of rec's client and in
// total.
func countSession(tx *bolt.Tx, rec uploadRecord, delta int64) error {
	b := tx.Bucket(bucketUploadCounts)
	if err := addCount(b, countTotal, delta); err != nil {
		return err
	}
	if rec.Client == "" {
		return nil
	}
	return addCount(b, clientCountKey(rec.Client), delta)
}

// admit reports ErrTooManyUploads when client may not open one more
// session.
func (l *uploadLimits) admit(tx *bolt.Tx, client string) error {
	b := tx.Bucket(bucketUploadCounts)
	if n := getCount(b, countTotal); l.total > 0 && n >= int64(l.total) {
		return fmt.Errorf("%w: the registry has %d open upload sessions, its limit (storage.max_uploads); finish or cancel some", ErrTooManyUploads, n)
	}
	if n := getCount(b, clientCountKey(client)); l.perClient > 0 && n >= int64(l.perClient) {
		return fmt.Errorf("%w: you have %d open upload sessions, the limit per client (storage.max_uploads_per_client); finish or cancel some", ErrTooManyUploads, n)
	}
	return nil
}

// deleteSession removes session id, if there is one, and its count.
func deleteSession(tx *bolt.Tx, id string) error {
	b := tx.Bucket(bucketUploads)
	var rec uploadRecord
	if !getJSON(b, []byte(id), &rec) {
		return nil
	}
	if err := b.Delete([]byte(id)); err != nil {
		return err
	}
	return countSession(tx, rec, -1)
}

// initUploadCounts counts the sessions of a store made before counts were
// kept. Their client is unknown: they count in the total only.
func initUploadCounts(tx *bolt.Tx) error {
	if tx.Bucket(bucketUploadCounts) != nil {
		return nil
	}
	if _, err := tx.CreateBucket(bucketUploadCounts); err != nil {
		return err
	}
	return tx.Bucket(bucketUploads).ForEach(func(_, v []byte) error {
		var rec uploadRecord
		json.Unmarshal(v, &rec) // a bad record still counts in the total
		return countSession(tx, rec, 1)
	})
}

// lastWrite is when the session last received bytes, or started.
func (rec uploadRecord) lastWrite() int64 { return max(rec.Touched, rec.Started) }

// idleSince reports whether session id, described by rec, has had no
// write since cutoff and none is under way.
func (s *Store) idleSince(id string, rec uploadRecord, cutoff time.Time) bool {
	return rec.lastWrite() < cutoff.UnixNano() && !s.writing.has(id)
}

// sweepIdleUploads discards the sessions idle for longer than
// storage.upload_idle_expiry, with their bytes, at most once per quarter
// of that period (and at least once a minute): it runs when a session is
// opened, which is also when idle sessions would crowd out new ones. A
// session being written, or locked by another call, is left for the next
// sweep. It returns how many sessions it discarded.
func (s *Store) sweepIdleUploads(ctx context.Context, now time.Time) int {
	l := &s.limits
	if l.idle <= 0 {
		return 0
	}
	every := min(l.idle/4, time.Minute)
	last := l.lastSweep.Load()
	if now.UnixNano()-last < int64(every) || !l.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return 0
	}
	ctx = context.WithoutCancel(ctx)
	cutoff := now.Add(-l.idle)
	byStripe := map[*sync.Mutex][]string{}
	s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
			var rec uploadRecord
			if json.Unmarshal(v, &rec) == nil && s.idleSince(string(k), rec, cutoff) {
				byStripe[stripeOf(string(k))] = append(byStripe[stripeOf(string(k))], string(k))
			}
			return nil
		})
	})
	discarded := 0
	// One transaction per lock stripe, not per session: thousands of
	// idle sessions go in a few dozen commits.
	for m, ids := range byStripe {
		if !m.TryLock() {
			continue
		}
		var gone []string
		err := s.commit.update(func(tx *bolt.Tx) error {
			gone = gone[:0]
			for _, id := range ids {
				var rec uploadRecord
				if !getJSON(tx.Bucket(bucketUploads), []byte(id), &rec) || !s.idleSince(id, rec, cutoff) {
					continue
				}
				if err := deleteSession(tx, id); err != nil {
					return err
				}
				gone = append(gone, id)
			}
			return nil
		})
		if err == nil {
			for _, id := range gone {
				s.blobs.Delete(ctx, uploadKey(id))
			}
			discarded += len(gone)
		}
		m.Unlock()
	}
	return discarded
}

// capBody returns r limited to what a blob of storage.max_blob_size
// allows past offset: ErrBlobTooLarge before reading when the announced
// size (-1 if unknown) is over, and as a read error as soon as a body of
// unknown size grows past it.
func (s *Store) capBody(offset, size int64, r io.Reader) (io.Reader, error) {
	max := s.limits.maxBlob
	if max <= 0 {
		return r, nil
	}
	if offset+size > max || offset > max {
		return nil, s.tooLarge()
	}
	return &cappedReader{r: r, left: max - offset, err: s.tooLarge()}, nil
}

func (s *Store) tooLarge() error {
	return fmt.Errorf("%w: blobs may hold at most %d bytes (storage.max_blob_size)", ErrBlobTooLarge, s.limits.maxBlob)
}

// cappedReader fails with err once more than left bytes come through.
type cappedReader struct {
	r    io.Reader
	left int64
	err  error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left < 0 {
		return 0, c.err
	}
	return n, err
}
