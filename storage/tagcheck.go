package storage

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// The pull-through cache keeps, per cached tag, when the upstream last
// confirmed it: in the repository's sub-bucket c, tag → check time and
// the digest the tag named then (encodeTag's layout). A check counts only
// while the tag still names that digest, and it is deleted with its tag
// or repository, so the bucket holds at most one entry per existing tag.
var subChecks = []byte("c")

// RecordTagCheck notes that tag of repo, naming d, matched its upstream at
// t. It does nothing if the tag no longer names d. Concurrent calls share
// a transaction, so a burst of checks costs few disk syncs.
func (s *Store) RecordTagCheck(ctx context.Context, repo, tag string, d digest.Digest, t time.Time) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		rb := repoBucket(tx, repo)
		if rb == nil {
			return nil
		}
		if cur, _, ok := decodeTag(rb.Bucket(subTags).Get([]byte(tag))); !ok || cur != d {
			return nil
		}
		cb, err := rb.CreateBucketIfNotExists(subChecks)
		if err != nil {
			return err
		}
		return cb.Put([]byte(tag), encodeTag(d, t))
	})
}

// TagChecked returns when tag of repo was last recorded as matching its
// upstream, if it was while naming the manifest it names now.
func (s *Store) TagChecked(ctx context.Context, repo, tag string) (t time.Time, ok bool) {
	s.db.View(func(tx *bolt.Tx) error {
		rb := repoBucket(tx, repo)
		if rb == nil || rb.Bucket(subChecks) == nil {
			return nil
		}
		cur, _, found := decodeTag(rb.Bucket(subTags).Get([]byte(tag)))
		d, at, checked := decodeTag(rb.Bucket(subChecks).Get([]byte(tag)))
		if found && checked && d == cur {
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
		rb := repoBucket(tx, repo)
		if rb == nil {
			return nil
		}
		cur, at, ok := decodeTag(rb.Bucket(subTags).Get([]byte(tag)))
		if !ok || !match(cur, at) {
			return nil
		}
		deleted = true
		if event {
			if err := s.addEvent(tx, Event{Kind: EventDeleteTag, Repo: repo, Digest: cur, Tags: []string{tag}}); err != nil {
				return err
			}
		}
		return deleteTag(rb, []byte(tag))
	})
	return deleted, err
}

// deleteTag removes tag, and its check time, from repository bucket rb.
func deleteTag(rb *bolt.Bucket, tag []byte) error {
	if cb := rb.Bucket(subChecks); cb != nil {
		if err := cb.Delete(tag); err != nil {
			return err
		}
	}
	return rb.Bucket(subTags).Delete(tag)
}
