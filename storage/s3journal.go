package storage

import (
	"context"
	"errors"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketMultipart holds upload id → driver key for every multipart upload
// the S3 driver has begun and not yet seen completed or aborted. S3 keeps
// (and bills) an abandoned upload's parts until it is aborted, and not
// every server lists uploads by prefix (MinIO lists only exact keys, and
// only uploads begun since it started), so the registry aborts its own
// from this record: at start, and at every garbage collection.
var bucketMultipart = []byte("multipart")

// multipartJournal records multipart uploads between their start and
// their end. begin is called before the first part is sent; end once the
// upload is completed or surely aborted.
type multipartJournal interface {
	begin(key, id string) error
	end(id string) error
}

func (s *Store) begin(key, id string) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMultipart)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), []byte(key))
	})
}

func (s *Store) end(id string) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMultipart); b != nil {
			return b.Delete([]byte(id))
		}
		return nil
	})
}

// AbortMultipartUploads aborts the multipart uploads the journal records
// that no writer of this process is sending: those of a process that
// died, and those whose abort failed or may have raced a part still on
// its way. It returns how many it aborted; an upload the server no longer
// knows counts as aborted. It does nothing for drivers without multipart
// uploads.
func (s *Store) AbortMultipartUploads(ctx context.Context) (int, error) {
	d, ok := s.blobs.(*S3)
	if !ok {
		return 0, nil
	}
	type upload struct{ id, key string }
	var ups []upload
	s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMultipart); b != nil {
			b.ForEach(func(k, v []byte) error {
				ups = append(ups, upload{string(k), string(v)})
				return nil
			})
		}
		return nil
	})
	n := 0
	var errs []error
	for _, up := range ups {
		if d.live.has(up.id) {
			continue
		}
		if err := d.abortUpload(ctx, up.key, up.id); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		errs = append(errs, s.end(up.id))
	}
	return n, errors.Join(errs...)
}

// liveUploads is the set of multipart upload ids this process is sending.
type liveUploads struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (l *liveUploads) add(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ids == nil {
		l.ids = map[string]struct{}{}
	}
	l.ids[id] = struct{}{}
}

func (l *liveUploads) remove(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.ids, id)
}

func (l *liveUploads) has(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.ids[id]
	return ok
}

// abortStartTimeout bounds the aborts at start: a slow S3 server delays
// the registry's start by at most this much, and GC retries the rest.
const abortStartTimeout = 30 * time.Second

// adoptMultipart makes the store the journal of an S3 driver's multipart
// uploads, and aborts those a process that died left behind.
func (s *Store) adoptMultipart(ctx context.Context) {
	d, ok := s.blobs.(*S3)
	if !ok {
		return
	}
	d.journal = s
	ctx, cancel := context.WithTimeout(ctx, abortStartTimeout)
	defer cancel()
	s.AbortMultipartUploads(ctx)
}
