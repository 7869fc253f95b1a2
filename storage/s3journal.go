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

// bucketIntents holds token → driver key for every multipart upload the
// S3 driver is about to begin: S3 names an upload only in its answer, so
// without this record a crash between the request and the record of its
// id would leave an upload nothing names. The upload's own record
// replaces it.
var bucketIntents = []byte("multipartintents")

// multipartJournal records multipart uploads between their start and
// their end. intend is called before an upload of key is requested;
// begin, with the upload's id, before the first part is sent; end once
// the upload is completed or surely aborted, and drop for an intent that
// began no upload.
type multipartJournal interface {
	intend(token, key string) error
	begin(key, id, token string) error
	end(id string) error
	drop(token string) error
}

func (s *Store) intend(token, key string) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketIntents)
		if err != nil {
			return err
		}
		return b.Put([]byte(token), []byte(key))
	})
}

func (s *Store) begin(key, id, token string) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMultipart)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(id), []byte(key)); err != nil {
			return err
		}
		return deleteIntent(tx, token)
	})
}

func (s *Store) drop(token string) error {
	return s.commit.update(func(tx *bolt.Tx) error { return deleteIntent(tx, token) })
}

func deleteIntent(tx *bolt.Tx, token string) error {
	if b := tx.Bucket(bucketIntents); b != nil {
		return b.Delete([]byte(token))
	}
	return nil
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
// its way. For an upload a process died requesting, before it recorded
// the id, it lists the uploads of that key. It returns how many it
// aborted; an upload the server no longer knows counts as aborted. It
// does nothing for drivers without multipart uploads.
func (s *Store) AbortMultipartUploads(ctx context.Context) (int, error) {
	d, ok := s.blobs.(*S3)
	if !ok {
		return 0, nil
	}
	ups, intents := journalled(s, bucketMultipart), journalled(s, bucketIntents)
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
	for _, in := range intents {
		if d.live.has(in.id) {
			continue
		}
		aborted, err := d.abortUploadsOf(ctx, in.key)
		n += aborted
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, s.drop(in.id))
	}
	return n, errors.Join(errs...)
}

// journalEntry is one record of the journal: an upload id, or an
// intent's token, and its key.
type journalEntry struct{ id, key string }

func journalled(s *Store, bucket []byte) []journalEntry {
	var es []journalEntry
	s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucket); b != nil {
			b.ForEach(func(k, v []byte) error {
				es = append(es, journalEntry{string(k), string(v)})
				return nil
			})
		}
		return nil
	})
	return es
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
