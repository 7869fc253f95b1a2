package storage

import (
	"bytes"
	"context"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// The pull-through cache keeps, per cached tag, when the upstream last
// confirmed it: in bucket tagchecks, under the tag's key, the check time
// and the digest the tag named then (encodeTag's layout). A check counts
// only while the tag still names that digest, and it is deleted with its
// tag, so the bucket holds at most one entry per existing tag.

// RecordTagCheck notes that tag of repo, naming d, matched its upstream at
// t. It does nothing if the tag no longer names d. Concurrent calls share
// a transaction, so a burst of checks costs few disk syncs.
func (s *Store) RecordTagCheck(ctx context.Context, repo, tag string, d digest.Digest, t time.Time) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		id := repoID(tx, repo)
		if id == nil {
			return nil
		}
		k := key(id, []byte(tag))
		if cur, _, ok := decodeTag(tx.Bucket(bucketTags).Get(k)); !ok || cur != d {
			return nil
		}
		return tx.Bucket(bucketChecks).Put(k, encodeTag(d, t))
	})
}

// TagChecked returns when tag of repo was last recorded as matching its
// upstream, if it was while naming the manifest it names now.
func (s *Store) TagChecked(ctx context.Context, repo, tag string) (t time.Time, ok bool) {
	s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketRepos).Get([]byte(repo))
		if id == nil {
			return nil
		}
		k := key(id, []byte(tag))
		cur, _, found := decodeTagRaw(tx.Bucket(bucketTags).Get(k))
		d, at, checked := decodeTagRaw(tx.Bucket(bucketChecks).Get(k))
		if found && checked && bytes.Equal(d, cur) {
			t, ok = at, true
		}
		return nil
	})
	return t, ok
}

// DeleteTagOf removes tag from repo if it still names d, whenever it was
// pushed, and reports whether it did: the cache drops a tag its upstream
// deleted, unless the tag moved meanwhile.
func (s *Store) DeleteTagOf(ctx context.Context, repo, tag string, d digest.Digest) (bool, error) {
	return s.deleteTagWhen(repo, tag, false, func(cur digest.Digest, _ time.Time) bool { return cur == d })
}

// deleteTagWhen removes tag from repo if match accepts the digest it names
// and its push time, and reports whether it did. With event, the delete is
// an event (see events.go).
func (s *Store) deleteTagWhen(repo, tag string, event bool, match func(digest.Digest, time.Time) bool) (bool, error) {
	var deleted bool
	err := s.update(func(tx *bolt.Tx) error {
		deleted = false
		id := repoID(tx, repo)
		if id == nil {
			return nil
		}
		k := key(id, []byte(tag))
		cur, at, ok := decodeTag(tx.Bucket(bucketTags).Get(k))
		if !ok || !match(cur, at) {
			return nil
		}
		deleted = true
		if event {
			if err := s.addEvent(tx, Event{Kind: EventDeleteTag, Repo: repo, Digest: cur, Tags: []string{tag}}); err != nil {
				return err
			}
		}
		return deleteTag(tx, k)
	})
	return deleted, err
}

// deleteTag removes the tag of key k (repository id and tag), and its
// check time.
func deleteTag(tx *bolt.Tx, k []byte) error {
	if err := tx.Bucket(bucketChecks).Delete(k); err != nil {
		return err
	}
	return tx.Bucket(bucketTags).Delete(k)
}
