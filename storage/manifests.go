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

// A manifest record is the media type, the JSON metadata, each preceded by
// its uvarint length, then the manifest bytes: a GET reads the media type
// and slices the bytes without decoding JSON.
func encodeManifest(m Manifest) ([]byte, error) {
	meta, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(m.MediaType)+len(meta)+len(m.Content)+8)
	out = binary.AppendUvarint(out, uint64(len(m.MediaType)))
	out = append(out, m.MediaType...)
	out = binary.AppendUvarint(out, uint64(len(meta)))
	out = append(out, meta...)
	return append(out, m.Content...), nil
}

// manifestRecord is a record split into its parts, still in bbolt's memory.
type manifestRecord struct {
	mediaType, meta, content []byte
}

func splitManifest(d digest.Digest, rec []byte) (manifestRecord, error) {
	var r manifestRecord
	var ok bool
	if r.mediaType, rec, ok = cutField(rec); !ok {
		return r, fmt.Errorf("manifest %s: corrupt record", d)
	}
	if r.meta, r.content, ok = cutField(rec); !ok {
		return r, fmt.Errorf("manifest %s: corrupt record", d)
	}
	return r, nil
}

func cutField(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// decodeManifest copies a record out of bbolt's memory: the full metadata
// when full is set, else only what a GET or HEAD answers with (digest,
// media type, size and, with content, the bytes).
func decodeManifest(d digest.Digest, rec []byte, full, content bool) (Manifest, error) {
	r, err := splitManifest(d, rec)
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if full {
		if err := json.Unmarshal(r.meta, &m); err != nil {
			return m, fmt.Errorf("manifest %s: %w", d, err)
		}
	}
	m.Digest, m.MediaType, m.Size = d, string(r.mediaType), int64(len(r.content))
	if content {
		m.Content = bytes.Clone(r.content)
	}
	return m, nil
}

func isDigest(ref string) bool { return strings.ContainsRune(ref, ':') }

// PutManifest stores m in repo and points tags at it, in one transaction.
// It returns ErrManifestBlobUnknown, naming the digest, if a blob is not
// linked to repo or a child manifest is not in repo at commit time.
func (s *Store) PutManifest(ctx context.Context, repo string, m Manifest, tags []string) error {
	return s.putManifest(repo, m, tags, refsAll)
}

// PutPartialIndex is PutManifest for an index some of whose child
// manifests repo lacks: replication copies only some platforms of an
// index, keeping its bytes, and a pull of a platform left out finds no
// manifest. Blobs must still be there, as for PutManifest.
func (s *Store) PutPartialIndex(ctx context.Context, repo string, m Manifest, tags []string) error {
	return s.putManifest(repo, m, tags, refsBlobs)
}

// PutCachedManifest stores m in repo and points tags at it, as PutManifest
// does, but without requiring its blobs and child manifests to be there:
// a pull-through cache stores a manifest before clients ask for what it
// references. The references are kept, so GC keeps whatever of them is
// cached while the manifest is.
func (s *Store) PutCachedManifest(ctx context.Context, repo string, m Manifest, tags []string) error {
	return s.putManifest(repo, m, tags, refsNone)
}

// What putManifest requires to be in the repository before a manifest.
type refCheck int

const (
	refsAll   refCheck = iota // blobs and child manifests: a push
	refsBlobs                 // blobs: a push of a partial index
	refsNone                  // nothing: a cache fill, not an event
)

func (s *Store) putManifest(repo string, m Manifest, tags []string, refs refCheck) error {
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
	return s.update(func(tx *bolt.Tx) error {
		rb, err := createRepoBucket(tx, repo)
		if err != nil {
			return err
		}
		if refs != refsNone {
			if err := s.addEvent(tx, Event{Kind: EventPush, Repo: repo, Digest: m.Digest, Tags: tags}); err != nil {
				return err
			}
		}
		links, manifests := rb.Bucket(subLinks), rb.Bucket(subManifests)
		for _, b := range m.Blobs {
			if refs != refsNone && links.Get([]byte(b)) == nil {
				return fmt.Errorf("%w: blob %s", ErrManifestBlobUnknown, b)
			}
		}
		for _, c := range m.Manifests {
			if refs == refsAll && manifests.Get([]byte(c)) == nil {
				return fmt.Errorf("%w: manifest %s", ErrManifestBlobUnknown, c)
			}
		}
		// A digest names its bytes, so a manifest already stored needs no
		// rewrite: pushing more tags of it dirties only the tag pages.
		if manifests.Get([]byte(m.Digest)) != nil {
			return putTags(rb.Bucket(subTags), tags, m.Digest, now)
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
		return putTags(rb.Bucket(subTags), tags, m.Digest, now)
	})
}

func putTags(b *bolt.Bucket, tags []string, d digest.Digest, now time.Time) error {
	for _, tag := range tags {
		if err := b.Put([]byte(tag), encodeTag(d, now)); err != nil {
			return err
		}
	}
	return nil
}

func referrerKey(subject, referrer digest.Digest) []byte {
	return []byte(string(subject) + " " + string(referrer))
}

// GetManifest returns the manifest of repo named by reference, a tag or a
// digest, or ErrManifestNotFound. Only what a pull needs is loaded: Digest,
// MediaType, Size and Content.
func (s *Store) GetManifest(ctx context.Context, repo, reference string) (Manifest, error) {
	return s.manifest(repo, reference, true)
}

// StatManifest is GetManifest without the bytes.
func (s *Store) StatManifest(ctx context.Context, repo, reference string) (Manifest, error) {
	return s.manifest(repo, reference, false)
}

func (s *Store) manifest(repo, reference string, withContent bool) (Manifest, error) {
	if !withContent && isDigest(reference) {
		// A HEAD by digest precedes pushing an index that names it; GC
		// leaves recently checked manifests alone (see gc.go).
		s.checks.note(repo, digest.Digest(reference))
	}
	var m Manifest
	err := s.db.View(func(tx *bolt.Tx) error {
		rb := repoBucket(tx, repo)
		if rb == nil {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, reference)
		}
		d := digest.Digest(reference)
		if !isDigest(reference) {
			var ok bool
			if d, _, ok = decodeTag(rb.Bucket(subTags).Get([]byte(reference))); !ok {
				return fmt.Errorf("%w: tag %s", ErrManifestNotFound, reference)
			}
		}
		rec := rb.Bucket(subManifests).Get([]byte(d))
		if rec == nil {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, reference)
		}
		var err error
		m, err = decodeManifest(d, rec, false, withContent)
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
	return s.update(func(tx *bolt.Tx) error {
		rb := repoBucket(tx, repo)
		if rb == nil {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, d)
		}
		rec := rb.Bucket(subManifests).Get([]byte(d))
		if rec == nil {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, d)
		}
		if err := s.addEvent(tx, Event{Kind: EventDeleteManifest, Repo: repo, Digest: d}); err != nil {
			return err
		}
		m, err := decodeManifest(d, rec, true, false)
		if err != nil {
			return err
		}
		if m.Subject != "" {
			if err := rb.Bucket(subReferrers).Delete(referrerKey(m.Subject, d)); err != nil {
				return err
			}
		}
		if err := deleteTagsOf(rb, d); err != nil {
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

// deleteTagsOf removes the tags of repository bucket rb that name d.
func deleteTagsOf(rb *bolt.Bucket, d digest.Digest) error {
	var doomed [][]byte
	err := rb.Bucket(subTags).ForEach(func(k, v []byte) error {
		if td, _, ok := decodeTag(v); ok && td == d {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := deleteTag(rb, k); err != nil {
			return err
		}
	}
	return nil
}

// DeleteTag removes tag from repo, leaving the manifest it named.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	return s.update(func(tx *bolt.Tx) error {
		rb := repoBucket(tx, repo)
		if rb == nil || rb.Bucket(subTags).Get([]byte(tag)) == nil {
			return fmt.Errorf("%w: tag %s", ErrManifestNotFound, tag)
		}
		d, _, _ := decodeTag(rb.Bucket(subTags).Get([]byte(tag)))
		if err := s.addEvent(tx, Event{Kind: EventDeleteTag, Repo: repo, Digest: d, Tags: []string{tag}}); err != nil {
			return err
		}
		return deleteTag(rb, []byte(tag))
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
