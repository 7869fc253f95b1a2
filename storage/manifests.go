package storage

import (
	"bytes"
	"context"
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
		if err := decodeManifestMeta(d, r.meta, &m); err != nil {
			return m, err
		}
	}
	m.Digest, m.MediaType, m.Size = d, r.mediaType, int64(len(r.content))
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
	rec := encodeManifest(m)
	mkey := digestKey(m.Digest)
	return s.update(func(tx *bolt.Tx) error {
		id, err := createRepo(tx, repo)
		if err != nil {
			return err
		}
		if refs != refsNone {
			if err := s.addEvent(tx, Event{Kind: EventPush, Repo: repo, Digest: m.Digest, Tags: tags}); err != nil {
				return err
			}
		}
		if err := checkRefs(tx, id, m, refs); err != nil {
			return err
		}
		manifests := tx.Bucket(bucketManifests)
		// A digest names its bytes, so a manifest already stored needs no
		// rewrite: pushing more tags of it dirties only the tag pages.
		if manifests.Get(key(id, mkey)) != nil {
			return putTags(tx, id, tags, mkey, now)
		}
		if err := put(manifests, key(id, mkey), rec); err != nil {
			return err
		}
		if m.Subject != "" {
			if err := put(tx.Bucket(bucketReferrers), referrerKey(id, m.Subject, m.Digest), encodeReferrer(m)); err != nil {
				return err
			}
		}
		return putTags(tx, id, tags, mkey, now)
	})
}

// checkRefs returns ErrManifestBlobUnknown, naming the digest, if a blob
// of m is not linked to repository id, or a child manifest not in it, as
// refs requires.
func checkRefs(tx *bolt.Tx, id []byte, m Manifest, refs refCheck) error {
	links, manifests := tx.Bucket(bucketLinks), tx.Bucket(bucketManifests)
	for _, b := range m.Blobs {
		if refs != refsNone && links.Get(digestAt(id, b)) == nil {
			return fmt.Errorf("%w: blob %s", ErrManifestBlobUnknown, b)
		}
	}
	for _, c := range m.Manifests {
		if refs == refsAll && manifests.Get(digestAt(id, c)) == nil {
			return fmt.Errorf("%w: manifest %s", ErrManifestBlobUnknown, c)
		}
	}
	return nil
}

// putTags points tags of repository id at the manifest whose digest
// encodes as mkey.
func putTags(tx *bolt.Tx, id []byte, tags []string, mkey []byte, now time.Time) error {
	v := append(appendTime(make([]byte, 0, 8+len(mkey)), now), mkey...)
	b := tx.Bucket(bucketTags)
	for _, tag := range tags {
		if err := put(b, key(id, []byte(tag)), v); err != nil {
			return err
		}
	}
	return nil
}

func referrerKey(id []byte, subject, referrer digest.Digest) []byte {
	return appendDigest(appendDigest(bytes.Clone(id), subject), referrer)
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
	err := s.view(func(tx *bolt.Tx) error {
		repos := tx.Bucket(bucketRepos)
		id := repos.Get([]byte(repo))
		if id == nil {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, reference)
		}
		var k []byte
		d := digest.Digest(reference)
		if isDigest(reference) {
			k = digestAt(id, d)
		} else {
			raw, _, ok := decodeTagRaw(tx.Bucket(bucketTags).Get(key(id, []byte(reference))))
			if !ok {
				return fmt.Errorf("%w: tag %s", ErrManifestNotFound, reference)
			}
			k, d = key(id, raw), digestString(raw)
		}
		rec := tx.Bucket(bucketManifests).Get(k)
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
		id := repoID(tx, repo)
		if id == nil {
			return fmt.Errorf("%w: %s", ErrManifestNotFound, d)
		}
		rec := tx.Bucket(bucketManifests).Get(digestAt(id, d))
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
		if err := removeManifest(tx, id, d, m.Subject); err != nil {
			return err
		}
		return dropRepoIfEmpty(tx, repo, id)
	})
}

// deleteTagsOf removes the tags of repository id that name d.
func deleteTagsOf(tx *bolt.Tx, id []byte, d digest.Digest) error {
	want := digestKey(d)
	var doomed [][]byte
	c := tx.Bucket(bucketTags).Cursor()
	for k, v := c.Seek(id); k != nil && bytes.HasPrefix(k, id); k, v = c.Next() {
		if raw, _, ok := decodeTagRaw(v); ok && bytes.Equal(raw, want) {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := deleteTag(tx, k); err != nil {
			return err
		}
	}
	return nil
}

// DeleteTag removes tag from repo, leaving the manifest it named.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	return s.update(func(tx *bolt.Tx) error {
		id := repoID(tx, repo)
		var v []byte
		if id != nil {
			v = tx.Bucket(bucketTags).Get(key(id, []byte(tag)))
		}
		if v == nil {
			return fmt.Errorf("%w: tag %s", ErrManifestNotFound, tag)
		}
		d, _, _ := decodeTag(v)
		if err := s.addEvent(tx, Event{Kind: EventDeleteTag, Repo: repo, Digest: d, Tags: []string{tag}}); err != nil {
			return err
		}
		return deleteTag(tx, key(id, []byte(tag)))
	})
}

// Tags lists up to n tags of repo (all if n < 0) in lexical order, starting
// after last. more reports whether tags remain. It returns
// ErrRepositoryNotFound for a repository that holds nothing.
func (s *Store) Tags(ctx context.Context, repo, last string, n int) (tags []string, more bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketRepos).Get([]byte(repo))
		if id == nil {
			return fmt.Errorf("%w: %s", ErrRepositoryNotFound, repo)
		}
		tags, more = page(tx.Bucket(bucketTags).Cursor(), id, last, n)
		return nil
	})
	return tags, more, err
}

// Repositories lists up to n repository names (all if n < 0) in lexical
// order, starting after last.
func (s *Store) Repositories(ctx context.Context, last string, n int) (repos []string, more bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		repos, more = page(tx.Bucket(bucketRepos).Cursor(), nil, last, n)
		return nil
	})
	return repos, more, err
}

// page lists up to n keys that start with prefix, without it, after
// last.
func page(c *bolt.Cursor, prefix []byte, last string, n int) ([]string, bool) {
	out := []string{}
	if n == 0 {
		return out, false
	}
	k, _ := c.Seek(key(prefix, []byte(last)))
	if last != "" && k != nil && string(k[min(len(prefix), len(k)):]) == last {
		k, _ = c.Next()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if n >= 0 && len(out) == n {
			return out, true
		}
		out = append(out, string(k[len(prefix):]))
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
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketRepos).Get([]byte(repo))
		if id == nil {
			return nil
		}
		prefix := digestAt(id, d)
		c := tx.Bucket(bucketReferrers).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var m Manifest
			ref, ok := decodeDigest(k[len(prefix):])
			if !ok || !decodeReferrer(v, &m) {
				return fmt.Errorf("referrer %x of %s: corrupt record", k[len(prefix):], d)
			}
			out = append(out, ocispec.Descriptor{MediaType: m.MediaType, Digest: ref, Size: m.Size,
				ArtifactType: m.ArtifactType, Annotations: m.Annotations})
		}
		return nil
	})
	return out, err
}
