package storage

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// DeleteTagOf removes tag from repo if it still names d, whenever it was
// pushed, and reports whether it did: the cache drops a tag its upstream
// deleted, unless the tag moved meanwhile.
func (s *Store) DeleteTagOf(ctx context.Context, repo, tag string, d digest.Digest) (bool, error) {
	return s.deleteTagWhen(repo, tag, func(cur digest.Digest, _ time.Time) bool { return cur == d })
}

// deleteTagWhen removes tag from repo if match accepts the digest it names
// and its push time, and reports whether it did.
func (s *Store) deleteTagWhen(repo, tag string, match func(digest.Digest, time.Time) bool) (bool, error) {
	var deleted bool
	err := s.commit.update(func(tx *bolt.Tx) error {
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
		return deleteTag(rb, []byte(tag))
	})
	return deleted, err
}

// deleteTag removes tag from repository bucket rb.
func deleteTag(rb *bolt.Bucket, tag []byte) error {
	return rb.Bucket(subTags).Delete(tag)
}
