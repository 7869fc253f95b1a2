package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// GCFile is a file in the blob store that no metadata knows.
type GCFile struct {
	Key  string
	Size int64
	// FirstSeen is when GC first noted it at this size, zero if never.
	FirstSeen time.Time
}

// ScanOrphanFiles calls fn with every file under blobs/ and uploads/ that
// has no blob record or upload session.
func (s *Store) ScanOrphanFiles(ctx context.Context, fn func(GCFile) error) error {
	defer s.releaseMapped()
	type noted struct {
		f          GCFile
		first      time.Time
		size       int64
		seenBefore bool
	}
	var batch []GCFile
	flush := func() error {
		var orphans []noted
		s.view(func(tx *bolt.Tx) error {
			seen := tx.Bucket(bucketOrphans)
			for _, f := range batch {
				s.releaseMappedIn(tx)
				if s.knownFile(tx, f.Key) {
					continue
				}
				o := noted{f: f}
				if seen != nil {
					o.first, o.size, o.seenBefore = decodeOrphan(seen.Get([]byte(f.Key)))
				}
				orphans = append(orphans, o)
			}
			return nil
		})
		s.releaseMapped()
		batch = batch[:0]
		for _, o := range orphans {
			if o.f.Size < 0 { // listed without its size
				size, err := s.blobs.Stat(ctx, o.f.Key)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				o.f.Size = size
			}
			if o.seenBefore && o.size == o.f.Size {
				o.f.FirstSeen = o.first
			}
			if err := fn(o.f); err != nil {
				return err
			}
		}
		return nil
	}
	add := func(key string, size int64) error {
		batch = append(batch, GCFile{Key: key, Size: size})
		if len(batch) == 1024 {
			return flush()
		}
		return nil
	}
	for _, prefix := range []string{"blobs", "uploads"} {
		var err error
		if kl, ok := s.blobs.(keyLister); ok {
			err = kl.WalkKeys(ctx, prefix, func(key string) error { return add(key, -1) })
		} else {
			err = s.blobs.Walk(ctx, prefix, add)
		}
		if err != nil {
			return err
		}
	}
	return flush()
}

// keyLister is implemented by drivers that list keys faster without their
// sizes: a filesystem stats each file for its size. Orphan scans then
// size only the files metadata does not know.
type keyLister interface {
	// WalkKeys calls fn for every key under prefix, in no particular
	// order.
	WalkKeys(ctx context.Context, prefix string, fn func(key string) error) error
}

// knownFile reports whether metadata names key: a blob record for a blob
// key, a session or a blob stored there for an upload key. An upload file this process is still
// writing is known too, however long its body takes: its id is random and
// registered before the file exists, so no check can see the file
// unregistered while it is being written.
func (s *Store) knownFile(tx *bolt.Tx, key string) bool {
	if d, ok := blobKeyDigest(key); ok {
		return tx.Bucket(bucketBlobs).Get(digestKey(d)) != nil
	}
	if id, ok := strings.CutPrefix(key, "uploads/"); ok && validUploadID(id) {
		return tx.Bucket(bucketUploads).Get([]byte(id)) != nil || s.writing.has(id) || locatedBlob(tx, key)
	}
	return false
}

// inflight is a set of upload ids being written in this process.
type inflight struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// add registers id until the returned function is called.
func (f *inflight) add(id string) func() {
	f.mu.Lock()
	f.ids[id] = struct{}{}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.ids, id)
		f.mu.Unlock()
	}
}

func (f *inflight) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ids[id]
	return ok
}

// blobKeyDigest is the inverse of blobKey.
func blobKeyDigest(key string) (digest.Digest, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 || parts[0] != "blobs" {
		return "", false
	}
	d := digest.Digest(parts[1] + ":" + parts[3])
	if d.Validate() != nil || blobKey(d) != key {
		return "", false
	}
	return d, true
}

func encodeOrphan(first time.Time, size int64) []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(first.UnixNano()))
	return binary.BigEndian.AppendUint64(v, uint64(size))
}

func decodeOrphan(v []byte) (time.Time, int64, bool) {
	if len(v) != 16 {
		return time.Time{}, 0, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), int64(binary.BigEndian.Uint64(v[8:])), true
}

// NoteOrphans records the orphan files of a scan: those never seen at
// their size are noted as first seen at now, and notes of files no longer
// orphans are dropped.
func (s *Store) NoteOrphans(ctx context.Context, files []GCFile, now time.Time) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketOrphans)
		if err != nil {
			return err
		}
		current := make(map[string]bool, len(files))
		for _, f := range files {
			current[f.Key] = true
			if _, size, ok := decodeOrphan(b.Get([]byte(f.Key))); ok && size == f.Size && !f.FirstSeen.IsZero() {
				continue
			}
			if err := b.Put([]byte(f.Key), encodeOrphan(now, f.Size)); err != nil {
				return err
			}
		}
		var stale [][]byte
		b.ForEach(func(k, _ []byte) error {
			if !current[string(k)] {
				stale = append(stale, []byte(string(k)))
			}
			return nil
		})
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteOrphanFiles deletes the files among files that, re-checked under
// their lock, metadata still does not know and that were first seen before
// cutoff at their current size. It returns those deleted.
func (s *Store) DeleteOrphanFiles(ctx context.Context, files []GCFile, cutoff time.Time) ([]GCFile, error) {
	var deleted []GCFile
	var errs []error
	for _, f := range files {
		ok, err := s.deleteOrphan(ctx, f.Key, cutoff)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Key, err))
		}
		if ok {
			deleted = append(deleted, f)
		}
	}
	if len(deleted) > 0 {
		err := s.commit.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketOrphans)
			if b == nil {
				return nil
			}
			for _, f := range deleted {
				if err := b.Delete([]byte(f.Key)); err != nil {
					return err
				}
			}
			return nil
		})
		errs = append(errs, err)
	}
	return deleted, errors.Join(errs...)
}

func (s *Store) deleteOrphan(ctx context.Context, key string, cutoff time.Time) (bool, error) {
	if d, ok := blobKeyDigest(key); ok {
		defer lockBlob(d)()
	} else if id, ok := strings.CutPrefix(key, "uploads/"); ok && validUploadID(id) {
		defer lockUpload(id)()
	}
	var first time.Time
	var size int64
	var noted, known bool
	s.view(func(tx *bolt.Tx) error {
		known = s.knownFile(tx, key)
		if b := tx.Bucket(bucketOrphans); b != nil {
			first, size, noted = decodeOrphan(b.Get([]byte(key)))
		}
		return nil
	})
	if known || !noted || !first.Before(cutoff) {
		return false, nil
	}
	now, err := s.blobs.Stat(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil || now != size {
		return false, err
	}
	return true, s.blobs.Delete(ctx, key)
}
