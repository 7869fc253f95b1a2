package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Digest digest.Digest
	Size   int64
}

// blobKey is where the driver keeps a blob's bytes. The two-character
// fan-out keeps directories small on filesystems.
func blobKey(d digest.Digest) string {
	enc := d.Encoded()
	return "blobs/" + string(d.Algorithm()) + "/" + enc[:2] + "/" + enc
}

func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrDigestInvalid, err)
	}
	return nil
}

// StatBlob returns the blob d if it is linked to repo, or ErrBlobNotFound.
func (s *Store) StatBlob(ctx context.Context, repo string, d digest.Digest) (BlobInfo, error) {
	if err := checkDigest(d); err != nil {
		return BlobInfo{}, err
	}
	// Noted before the lookup: a GC transaction either sees the check or
	// commits before it, and then the lookup misses (see gc.go).
	s.checks.note(repo, d)
	var info BlobInfo
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		info, err = linkedBlob(tx, repo, d)
		return err
	})
	return info, err
}

func linkedBlob(tx *bolt.Tx, repo string, d digest.Digest) (BlobInfo, error) {
	id := tx.Bucket(bucketRepos).Get([]byte(repo))
	if id == nil || tx.Bucket(bucketLinks).Get(digestAt(id, d)) == nil {
		return BlobInfo{}, fmt.Errorf("%w: %s", ErrBlobNotFound, d)
	}
	rec, ok := decodeBlobRecord(tx.Bucket(bucketBlobs).Get(digestKey(d)))
	if !ok {
		return BlobInfo{}, fmt.Errorf("%w: %s", ErrBlobNotFound, d)
	}
	return BlobInfo{Digest: d, Size: rec.Size}, nil
}

// OpenBlob opens the bytes of blob d from offset. Callers check the
// repository's link with StatBlob first. The caller closes the reader.
func (s *Store) OpenBlob(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	rc, err := s.blobs.Reader(ctx, s.location(d), offset)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return rc, nil
}

// BlobURL returns a URL the client can fetch blob d from directly, or ""
// when the driver serves no such URLs, or not yet for d: a blob whose
// bytes are still in pieces (s3compose.go) is served by the registry.
// Callers check the repository's link with StatBlob first.
func (s *Store) BlobURL(ctx context.Context, d digest.Digest) (string, error) {
	r, ok := s.blobs.(Redirector)
	if !ok {
		return "", nil
	}
	if err := checkDigest(d); err != nil {
		return "", err
	}
	var key string
	var pieces bool
	s.view(func(tx *bolt.Tx) error {
		key = blobLocation(tx, d)
		pieces = key != blobKey(d) && inPieces(tx, key)
		return nil
	})
	if pieces {
		return "", nil
	}
	return r.RedirectURL(ctx, key)
}

// DeleteBlob unlinks blob d from repo: the repository can no longer read
// it. The bytes stay until garbage collection finds them unreferenced.
func (s *Store) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	return s.commit.update(func(tx *bolt.Tx) error {
		id := repoID(tx, repo)
		links := tx.Bucket(bucketLinks)
		if id == nil || links.Get(digestAt(id, d)) == nil {
			return fmt.Errorf("%w: %s", ErrBlobNotFound, d)
		}
		if err := links.Delete(digestAt(id, d)); err != nil {
			return err
		}
		return dropRepoIfEmpty(tx, repo, id)
	})
}

// MountBlob links blob d, already linked to repository from, to repository
// to. It returns ErrBlobNotFound if from cannot read d.
func (s *Store) MountBlob(ctx context.Context, from, to string, d digest.Digest) (BlobInfo, error) {
	if err := checkDigest(d); err != nil {
		return BlobInfo{}, err
	}
	var info BlobInfo
	err := s.commit.update(func(tx *bolt.Tx) error {
		var err error
		if info, err = linkedBlob(tx, from, d); err != nil {
			return err
		}
		return link(tx, to, d, time.Now())
	})
	return info, err
}

// MountAnyBlob links blob d to repository to from the first repository,
// in name order, that has it and that allowed accepts, so a digest alone
// never grants access to a blob the caller could not read anyway. It
// returns ErrBlobNotFound if no such repository has d. allowed runs
// outside any transaction, so a slow check holds up no other call; only
// the repositories it accepts are searched for d, and the write that
// links d re-checks just the source found.
func (s *Store) MountAnyBlob(ctx context.Context, to string, d digest.Digest, allowed func(repo string) bool) (BlobInfo, error) {
	if err := checkDigest(d); err != nil {
		return BlobInfo{}, err
	}
	names, err := s.repoNames(d)
	if err != nil {
		return BlobInfo{}, err
	}
	readable := names[:0]
	for _, repo := range names {
		if allowed(repo) {
			readable = append(readable, repo)
		}
	}
	for {
		from, err := s.firstLinking(readable, d)
		if err != nil {
			return BlobInfo{}, err
		}
		var info BlobInfo
		err = s.commit.update(func(tx *bolt.Tx) error {
			var err error
			if info, err = linkedBlob(tx, from, d); err != nil {
				return err
			}
			return link(tx, to, d, time.Now())
		})
		if !errors.Is(err, ErrBlobNotFound) {
			return info, err
		}
		// The source lost d since the read: look past it.
		readable = readable[slices.Index(readable, from)+1:]
	}
}

// repoNames returns every repository name in order, or ErrBlobNotFound
// when the store has no blob d.
func (s *Store) repoNames(d digest.Digest) ([]string, error) {
	var names []string
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketBlobs).Get(digestKey(d)) == nil {
			return fmt.Errorf("%w: %s", ErrBlobNotFound, d)
		}
		c := tx.Bucket(bucketRepos).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			names = append(names, string(k))
		}
		return nil
	})
	return names, err
}

// firstLinking returns the first of repos that links d, or
// ErrBlobNotFound.
func (s *Store) firstLinking(repos []string, d digest.Digest) (string, error) {
	var from string
	err := s.view(func(tx *bolt.Tx) error {
		for _, repo := range repos {
			if id := tx.Bucket(bucketRepos).Get([]byte(repo)); id != nil && tx.Bucket(bucketLinks).Get(digestAt(id, d)) != nil {
				from = repo
				return nil
			}
		}
		return fmt.Errorf("%w: %s", ErrBlobNotFound, d)
	})
	return from, err
}

func link(tx *bolt.Tx, repo string, d digest.Digest, now time.Time) error {
	id, err := createRepo(tx, repo)
	if err != nil {
		return err
	}
	return putTime(tx.Bucket(bucketLinks), digestAt(id, d), now)
}

// BlobSizes returns the sizes of the blobs among ds that are stored;
// others are absent from the map.
func (s *Store) BlobSizes(ctx context.Context, ds []digest.Digest) map[digest.Digest]int64 {
	out := make(map[digest.Digest]int64, len(ds))
	s.view(func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bucketBlobs)
		for _, d := range ds {
			if rec, ok := decodeBlobRecord(blobs.Get(digestKey(d))); ok {
				out[d] = rec.Size
			}
		}
		return nil
	})
	return out
}
