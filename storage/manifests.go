package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// Manifest is a manifest as stored: its bytes and what was learnt from
// parsing them. Parsing and validation belong to the registry; the store
// checks references at commit time.
type Manifest struct {
	Digest    digest.Digest `json:"-"`
	MediaType string        `json:"mediaType"`
	Content   []byte        `json:"-"`
	// ArtifactType is what the referrers API reports: the manifest's
	// artifactType, else its config media type.
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Subject      digest.Digest     `json:"subject,omitempty"`
	// Blobs must be linked to the repository when the manifest is put.
	Blobs []digest.Digest `json:"blobs,omitempty"`
	// Manifests (an index's children) must be in the repository.
	Manifests []digest.Digest `json:"manifests,omitempty"`
	Pushed    time.Time       `json:"pushed"`
	// Size is the length of the manifest bytes.
	Size int64 `json:"size"`
}

// A manifest record is a uvarint length, the JSON metadata, then the
// manifest bytes, so a GET decodes a small header and slices the rest.
func encodeManifest(m Manifest) ([]byte, error) {
	meta, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := binary.AppendUvarint(make([]byte, 0, len(meta)+len(m.Content)+4), uint64(len(meta)))
	out = append(out, meta...)
	return append(out, m.Content...), nil
}

// decodeManifest copies the record out of bbolt's memory.
func decodeManifest(d digest.Digest, rec []byte, withContent bool) (Manifest, error) {
	var m Manifest
	n, k := binary.Uvarint(rec)
	if k <= 0 || uint64(len(rec)-k) < n {
		return m, fmt.Errorf("manifest %s: corrupt record", d)
	}
	if err := json.Unmarshal(rec[k:k+int(n)], &m); err != nil {
		return m, fmt.Errorf("manifest %s: %w", d, err)
	}
	m.Digest = d
	if withContent {
		m.Content = bytes.Clone(rec[k+int(n):])
	}
	return m, nil
}

func isDigest(ref string) bool { return strings.ContainsRune(ref, ':') }

// PutManifest stores m in repo and points tags at it, in one transaction.
// It returns ErrManifestBlobUnknown, naming the digest, if a blob is not
// linked to repo or a child manifest is not in repo at commit time.
func (s *Store) PutManifest(ctx context.Context, repo string, m Manifest, tags []string) error {
	if err := checkDigest(m.Digest); err != nil {
		return err
	}
	now := time.Now()
	m.Pushed = now
	m.Size = int64(len(m.Content))
	rec, err := encodeManifest(m)
	if err != nil {
		return err
	}
	return s.commit.update(func(tx *bolt.Tx) error {
		rb, err := createRepoBucket(tx, repo)
		if err != nil {
			return err
		}
		links, manifests := rb.Bucket(subLinks), rb.Bucket(subManifests)
		for _, b := range m.Blobs {
			if links.Get([]byte(b)) == nil {
				return fmt.Errorf("%w: blob %s", ErrManifestBlobUnknown, b)
			}
		}
		for _, c := range m.Manifests {
			if manifests.Get([]byte(c)) == nil {
				return fmt.Errorf("%w: manifest %s", ErrManifestBlobUnknown, c)
			}
		}
		if err := manifests.Put([]byte(m.Digest), rec); err != nil {
			return err
		}
		if m.Subject != "" {
			desc := ocispec.Descriptor{
				MediaType:    m.MediaType,
				Digest:       m.Digest,
				Size:         int64(len(m.Content)),
				ArtifactType: m.ArtifactType,
				Annotations:  m.Annotations,
			}
			if err := putJSON(rb.Bucket(subReferrers), referrerKey(m.Subject, m.Digest), desc); err != nil {
				return err
			}
		}
		for _, tag := range tags {
			if err := putJSON(rb.Bucket(subTags), []byte(tag), tagRecord{Digest: string(m.Digest), Pushed: now.UnixNano()}); err != nil {
				return err
			}
		}
		return nil
	})
}

func referrerKey(subject, referrer digest.Digest) []byte {
	return []byte(string(subject) + " " + string(referrer))
}

// GetManifest returns the manifest of repo named by reference, a tag or a
// digest, with its bytes; or ErrManifestNotFound.
func (s *Store) GetManifest(ctx context.Context, repo, reference string) (Manifest, error) {
	return s.manifest(repo, reference, true)
}

// StatManifest is GetManifest without the bytes.
func (s *Store) StatManifest(ctx context.Context, repo, reference string) (Manifest, error) {
	return s.manifest(repo, reference, false)
}

func (s *Store) manifest(repo, reference string, withContent bool) (Manifest, error) {
	var m Manifest
	err := s.db.View(func(tx *bolt.Tx) error {
		rb := repoBucket(tx, repo)
		if rb == nil {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, reference)
		}
		d := digest.Digest(reference)
		if !isDigest(reference) {
			var tag tagRecord
			if !getJSON(rb.Bucket(subTags), []byte(reference), &tag) {
				return fmt.Errorf("%w: tag %s", ErrManifestNotFound, reference)
			}
			d = digest.Digest(tag.Digest)
		}
		rec := rb.Bucket(subManifests).Get([]byte(d))
		if rec == nil {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, reference)
		}
		var err error
		m, err = decodeManifest(d, rec, withContent)
		return err
	})
	return m, err
}

// DeleteManifest removes manifest d from repo with every tag pointing at
// it and its entry in its subject's referrers.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	return s.commit.update(func(tx *bolt.Tx) error {
		rb := repoBucket(tx, repo)
		if rb == nil {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, d)
		}
		rec := rb.Bucket(subManifests).Get([]byte(d))
		if rec == nil {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, d)
		}
		m, err := decodeManifest(d, rec, false)
		if err != nil {
			return err
		}
		if m.Subject != "" {
			if err := rb.Bucket(subReferrers).Delete(referrerKey(m.Subject, d)); err != nil {
				return err
			}
		}
		if err := deleteTagsOf(rb.Bucket(subTags), d); err != nil {
			return err
		}
		if err := rb.Bucket(subManifests).Delete([]byte(d)); err != nil {
			return err
		}
		if err := rb.Bucket(subPulls).Delete([]byte(d)); err != nil {
			return err
		}
		return dropRepoIfEmpty(tx, repo)
	})
}

func deleteTagsOf(tags *bolt.Bucket, d digest.Digest) error {
	var doomed [][]byte
	err := tags.ForEach(func(k, v []byte) error {
		var t tagRecord
		if json.Unmarshal(v, &t) == nil && t.Digest == string(d) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := tags.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// DeleteTag removes tag from repo, leaving the manifest it named.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		rb := repoBucket(tx, repo)
		if rb == nil || rb.Bucket(subTags).Get([]byte(tag)) == nil {
			return fmt.Errorf("%w: tag %s", ErrManifestNotFound, tag)
		}
		return rb.Bucket(subTags).Delete([]byte(tag))
	})
}

// Tags lists up to n tags of repo (all if n < 0) in lexical order, starting
// after last. more reports whether tags remain. It returns
// ErrRepositoryNotFound for a repository that holds nothing.
func (s *Store) Tags(ctx context.Context, repo, last string, n int) (tags []string, more bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		rb := repoBucket(tx, repo)
		if rb == nil {
			return fmt.Errorf("%w: %s", ErrRepositoryNotFound, repo)
		}
		tags, more = page(rb.Bucket(subTags).Cursor(), last, n)
		return nil
	})
	return tags, more, err
}

// Repositories lists up to n repository names (all if n < 0) in lexical
// order, starting after last.
func (s *Store) Repositories(ctx context.Context, last string, n int) (repos []string, more bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		repos, more = page(tx.Bucket(bucketRepos).Cursor(), last, n)
		return nil
	})
	return repos, more, err
}

func page(c *bolt.Cursor, last string, n int) ([]string, bool) {
	out := []string{}
	if n == 0 {
		return out, false
	}
	var k []byte
	if last == "" {
		k, _ = c.First()
	} else {
		k, _ = c.Seek([]byte(last))
		if k != nil && string(k) == last {
			k, _ = c.Next()
		}
	}
	for ; k != nil; k, _ = c.Next() {
		if n >= 0 && len(out) == n {
			return out, true
		}
		out = append(out, string(k))
	}
	return out, false
}

// Referrers returns the descriptors of the manifests in repo whose subject
// is d. A repository or subject nobody refers to yields an empty list.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest) ([]ocispec.Descriptor, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	out := []ocispec.Descriptor{}
	err := s.db.View(func(tx *bolt.Tx) error {
		rb := repoBucket(tx, repo)
		if rb == nil {
			return nil
		}
		prefix := []byte(string(d) + " ")
		c := rb.Bucket(subReferrers).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var desc ocispec.Descriptor
			if err := json.Unmarshal(v, &desc); err != nil {
				return errors.Join(fmt.Errorf("referrer %s", k), err)
			}
			out = append(out, desc)
		}
		return nil
	})
	return out, err
}
