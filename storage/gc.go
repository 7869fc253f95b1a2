package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Garbage collection primitives. Package gc decides what to delete from
// scans; the Collect methods delete only what still qualifies when
// re-checked inside their write transaction, so a concurrent push wins.
//
// Every deletion takes a cutoff: anything created, linked, pushed, pulled
// or checked at or after it is kept. A check is a HEAD of a blob, or of a
// manifest by digest, which clients do right before pushing a manifest
// that names it. Checks are noted in memory before the lookup, so a GC
// transaction either sees the check or commits before the lookup, which
// then misses and the client uploads again. They are not persisted: the
// pushes that relied on them end with the process.
//
// A blob's record is deleted in a write transaction, then its file, both
// under lockBlob, which commitBlob also holds: a re-upload of the same
// bytes never has its file deleted under it. A crash in between leaves an
// orphan file. Orphan files (under blobs/ or uploads/ with no record) are
// noted in the gcorphans bucket with the time GC first saw them and their
// size, and deleted once seen longer than the grace period at an unchanged
// size: the Driver has no modification times, and a file being written
// grows.
//
// These methods assume GC runs in the process that serves (bbolt allows
// one). Several processes sharing metadata would need lockBlob and the
// check records to move into the metadata engine.
var bucketOrphans = []byte("gcorphans")

// maxChecks bounds the check records. Past it they are dropped and every
// key counts as checked at that moment: safe, only later to collect.
const maxChecks = 1 << 20

type checkRecorder struct {
	mu    sync.Mutex
	at    map[pullKey]time.Time
	floor time.Time
}

func newCheckRecorder() *checkRecorder {
	return &checkRecorder{at: map[pullKey]time.Time{}}
}

func (c *checkRecorder) note(repo string, d digest.Digest) {
	now := time.Now()
	c.mu.Lock()
	if len(c.at) >= maxChecks {
		c.at, c.floor = map[pullKey]time.Time{}, now
	}
	c.at[pullKey{repo, d}] = now
	c.mu.Unlock()
}

func (c *checkRecorder) last(repo string, d digest.Digest) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.at[pullKey{repo, d}]
	if c.floor.After(t) {
		return c.floor
	}
	return t
}

func (c *checkRecorder) prune(cutoff time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, t := range c.at {
		if t.Before(cutoff) {
			delete(c.at, k)
		}
	}
}

var blobLocks [256]sync.Mutex

func blobStripe(d digest.Digest) int {
	h := fnv.New32a()
	h.Write([]byte(d))
	return int(h.Sum32() % uint32(len(blobLocks)))
}

// lockBlob serialises creating and deleting blob d's file and record.
func lockBlob(d digest.Digest) func() {
	m := &blobLocks[blobStripe(d)]
	m.Lock()
	return m.Unlock
}

// lockBlobs locks the stripes of ds in ascending order, so two callers
// never wait on each other crosswise.
func lockBlobs(ds []digest.Digest) func() {
	stripes := make([]int, 0, len(ds))
	for _, d := range ds {
		stripes = append(stripes, blobStripe(d))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		blobLocks[i].Lock()
	}
	return func() {
		for _, i := range stripes {
			blobLocks[i].Unlock()
		}
	}
}

// GCTag is a tag as garbage collection and retention see it.
type GCTag struct {
	Name   string
	Digest digest.Digest
	Pushed time.Time
}

// GCManifest is a manifest with what it references and when it was used.
type GCManifest struct {
	Digest digest.Digest
	Size   int64
	Pushed time.Time
	// Used is the latest pull, or HEAD by digest, zero if never.
	Used      time.Time
	Subject   digest.Digest
	Blobs     []digest.Digest
	Manifests []digest.Digest
}

// GCLink is a blob a repository may read.
type GCLink struct {
	Digest digest.Digest
	// Linked is when it was last uploaded or mounted; Checked when a
	// client last asked for it (HEAD or GET), zero if never.
	Linked, Checked time.Time
}

// GCRepo is one repository's metadata, read in one transaction.
type GCRepo struct {
	Name      string
	Tags      []GCTag
	Manifests []GCManifest
	Links     []GCLink
}

// scanBudget bounds the records one read transaction of a scan reads. A
// long transaction holds the metadata file's map and stalls writers that
// grow it; one per small repository costs more than the reading.
const scanBudget = 2048

// ScanRepos calls fn with each repository, reading several small ones,
// or one large one, per short read transaction. fn runs outside any
// transaction.
func (s *Store) ScanRepos(ctx context.Context, fn func(*GCRepo) error) error {
	names, _, err := s.Repositories(ctx, "", -1)
	if err != nil {
		return err
	}
	return s.scanRepos(ctx, names, fn)
}

// ScanReposUnder is ScanRepos over the repositories whose names start
// with prefix, e.g. the cache of one upstream ("docker.io/").
func (s *Store) ScanReposUnder(ctx context.Context, prefix string, fn func(*GCRepo) error) error {
	var names []string
	s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRepos).Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
			names = append(names, string(k))
		}
		return nil
	})
	return s.scanRepos(ctx, names, fn)
}

func (s *Store) scanRepos(ctx context.Context, names []string, fn func(*GCRepo) error) error {
	for i := 0; i < len(names); {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []*GCRepo
		err := s.view(func(tx *bolt.Tx) error {
			for read := 0; i < len(names) && read < scanBudget; i++ {
				r, err := s.scanRepo(tx, names[i])
				if err != nil {
					return fmt.Errorf("repository %s: %w", names[i], err)
				}
				if r != nil { // else deleted since listed
					batch = append(batch, r)
					read += 1 + len(r.Tags) + len(r.Manifests) + len(r.Links)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		s.releaseMapped()
		for _, r := range batch {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) scanRepo(tx *bolt.Tx, name string) (*GCRepo, error) {
	id := tx.Bucket(bucketRepos).Get([]byte(name))
	if id == nil {
		return nil, nil
	}
	r := &GCRepo{Name: name}
	c := tx.Bucket(bucketTags).Cursor()
	for k, v := c.Seek(id); k != nil && bytes.HasPrefix(k, id); k, v = c.Next() {
		if d, pushed, ok := decodeTag(v); ok {
			r.Tags = append(r.Tags, GCTag{Name: string(k[len(id):]), Digest: d, Pushed: pushed})
		}
		s.releaseMappedIn(tx)
	}
	pulls := tx.Bucket(bucketPulls)
	c = tx.Bucket(bucketManifests).Cursor()
	for k, v := c.Seek(id); k != nil && bytes.HasPrefix(k, id); k, v = c.Next() {
		d, ok := decodeDigest(k[len(id):])
		if !ok {
			return nil, fmt.Errorf("manifest key %x: corrupt", k)
		}
		m, err := decodeGCManifest(d, v)
		if err != nil {
			return nil, err
		}
		m.Used = s.used(pulls, k, name, d)
		r.Manifests = append(r.Manifests, m)
		s.releaseMappedIn(tx)
	}
	c = tx.Bucket(bucketLinks).Cursor()
	for k, v := c.Seek(id); k != nil && bytes.HasPrefix(k, id); k, v = c.Next() {
		d, ok := decodeDigest(k[len(id):])
		if !ok {
			return nil, fmt.Errorf("link key %x: corrupt", k)
		}
		r.Links = append(r.Links, GCLink{Digest: d, Linked: decodeTime(v), Checked: s.checks.last(name, d)})
		s.releaseMappedIn(tx)
	}
	return r, nil
}

// decodeGCManifest decodes only what GC reads of a manifest record: not
// its bytes.
func decodeGCManifest(d digest.Digest, rec []byte) (GCManifest, error) {
	m, err := decodeManifest(d, rec, true, false)
	if err != nil {
		return GCManifest{}, err
	}
	return GCManifest{
		Digest: d, Size: m.Size, Pushed: m.Pushed,
		Subject: m.Subject, Blobs: m.Blobs, Manifests: m.Manifests,
	}, nil
}

// used is the latest pull or check of manifest d of repo, whose key is k:
// recorded, pending or in memory.
func (s *Store) used(pulls *bolt.Bucket, k []byte, repo string, d digest.Digest) time.Time {
	t, _ := getTime(pulls, k)
	s.pulls.mu.Lock()
	if p, ok := s.pulls.pending[pullKey{repo, d}]; ok && p.After(t) {
		t = p
	}
	s.pulls.mu.Unlock()
	if c := s.checks.last(repo, d); c.After(t) {
		t = c
	}
	return t
}

// GCBlob is a blob record.
type GCBlob struct {
	Digest  digest.Digest
	Size    int64
	Created time.Time
}

// ScanBlobs calls fn with every blob record, reading them in batches of
// short read transactions.
func (s *Store) ScanBlobs(ctx context.Context, fn func(GCBlob) error) error {
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []GCBlob
		s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketBlobs).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && string(k) == string(after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(batch) < 1024; k, v = c.Next() {
				rec, ok := decodeBlobRecord(v)
				if d, okKey := decodeDigest(k); ok && okKey {
					batch = append(batch, GCBlob{Digest: d, Size: rec.Size, Created: time.Unix(0, rec.Created)})
				}
				after = append(after[:0], k...)
				s.releaseMappedIn(tx)
			}
			return nil
		})
		s.releaseMapped()
		for _, b := range batch {
			if err := fn(b); err != nil {
				return err
			}
		}
		if len(batch) < 1024 {
			return nil
		}
	}
}

// ScanUploads calls fn with every open upload session.
func (s *Store) ScanUploads(ctx context.Context, fn func(Upload) error) error {
	var ups []Upload
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
			var rec uploadRecord
			if json.Unmarshal(v, &rec) == nil {
				ups = append(ups, Upload{ID: string(k), Repo: rec.Repo, Offset: rec.Offset, Started: time.Unix(0, rec.Started)})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, u := range ups {
		if err := fn(u); err != nil {
			return err
		}
	}
	return nil
}

// PruneChecks forgets blob and manifest checks older than cutoff.
func (s *Store) PruneChecks(cutoff time.Time) { s.checks.prune(cutoff) }

// DeleteTagIf removes tag from repo if it still names d and was last
// pushed at pushed, as a scan saw it: a tag pushed again since it was
// planned for deletion stays, even with the same manifest, since it is
// then the newest. It reports whether it deleted.
func (s *Store) DeleteTagIf(ctx context.Context, repo, tag string, d digest.Digest, pushed time.Time) (bool, error) {
	return s.deleteTagWhen(repo, tag, true, func(cur digest.Digest, at time.Time) bool {
		return cur == d && at.Equal(pushed)
	})
}
