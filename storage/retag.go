package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// RetagManifest records a push of manifest d that repo already holds
// with media type mediaType, and points tags at it: what PutManifest
// does for the same bytes, whose parse, the registry's, gave the same
// manifest when it was first stored. It checks the manifest's blobs and
// child manifests as PutManifest does, and returns the manifest's
// subject. It returns ErrManifestNotFound, having written nothing, if
// repo does not hold d with that media type; a look in a read
// transaction first spares a manifest pushed for the first time a write
// transaction.
func (s *Store) RetagManifest(ctx context.Context, repo string, d digest.Digest, mediaType string, tags []string) (digest.Digest, error) {
	if err := checkDigest(d); err != nil {
		return "", err
	}
	var held bool
	s.view(func(tx *bolt.Tx) error {
		_, held = heldManifest(tx, repo, d, mediaType, false)
		return nil
	})
	if !held {
		return "", fmt.Errorf("%w: %s", ErrManifestNotFound, d)
	}
	now := time.Now()
	var subject digest.Digest
	err := s.update(func(tx *bolt.Tx) error {
		m, ok := heldManifest(tx, repo, d, mediaType, true)
		if !ok {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, d)
		}
		id := repoID(tx, repo)
		if err := s.addEvent(tx, Event{Kind: EventPush, Repo: repo, Digest: d, Tags: tags}); err != nil {
			return err
		}
		if err := checkRefs(tx, id, m, refsAll); err != nil {
			return err
		}
		subject = m.Subject
		return putTags(tx, id, tags, digestKey(d), now)
	})
	return subject, err
}

// heldManifest reports whether repo holds manifest d with media type
// mediaType (and a record that decodes), and returns it, with its
// metadata when full is set.
func heldManifest(tx *bolt.Tx, repo string, d digest.Digest, mediaType string, full bool) (Manifest, bool) {
	id := repoID(tx, repo)
	if id == nil {
		return Manifest{}, false
	}
	rec := tx.Bucket(bucketManifests).Get(digestAt(id, d))
	if rec == nil {
		return Manifest{}, false
	}
	m, err := decodeManifest(d, rec, full, false)
	return m, err == nil && m.MediaType == mediaType
}
