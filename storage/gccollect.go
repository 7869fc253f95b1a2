package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// GCRepoPlan is what to delete from one repository, decided from a scan.
type GCRepoPlan struct {
	Repo string
	// Known holds every manifest the scan saw, whose references the plan
	// accounted for. Other manifests, pushed since, are read again. A nil
	// Known reads them all.
	Known     map[digest.Digest]bool
	Manifests []digest.Digest
	Links     []digest.Digest
	// Cutoff protects what was pushed, linked, used or checked at or
	// after it.
	Cutoff time.Time
}

// CollectRepo deletes the planned manifests and blob links of one
// repository in one write transaction, keeping any that, at commit time,
// is tagged, newer than the cutoff, used or checked since it, referenced
// by a manifest that stays (as an index child or a blob), or a referrer
// whose subject stays. It returns what it deleted.
func (s *Store) CollectRepo(ctx context.Context, p GCRepoPlan) (manifests, links []digest.Digest, err error) {
	defer s.releaseMapped()
	err = s.commit.update(func(tx *bolt.Tx) error {
		manifests, links = nil, nil
		id := repoID(tx, p.Repo)
		if id == nil {
			return nil
		}
		planned := make(map[digest.Digest]bool, len(p.Manifests))
		for _, d := range p.Manifests {
			planned[d] = true
		}
		doomed, err := s.recheckManifests(tx, id, p, planned)
		if err != nil {
			return err
		}
		referenced, err := s.survivorBlobs(tx, id, p, planned, doomed)
		if err != nil {
			return err
		}
		for _, d := range p.Manifests {
			m, ok := doomed[d]
			if !ok {
				continue
			}
			if err := removeManifest(tx, id, d, m.Subject); err != nil {
				return err
			}
			manifests = append(manifests, d)
			s.releaseMappedIn(tx)
		}
		lb := tx.Bucket(bucketLinks)
		for _, d := range p.Links {
			t, ok := getTime(lb, digestAt(id, d))
			if !ok || !t.Before(p.Cutoff) || referenced[d] || !s.checks.last(p.Repo, d).Before(p.Cutoff) {
				continue
			}
			if err := lb.Delete(digestAt(id, d)); err != nil {
				return err
			}
			links = append(links, d)
			s.releaseMappedIn(tx)
		}
		return dropRepoIfEmpty(tx, p.Repo, id)
	})
	return manifests, links, err
}

// recheckManifests returns the planned manifests that may still go: then
// untagged, old and unused, and not kept alive by a manifest that stays.
func (s *Store) recheckManifests(tx *bolt.Tx, id []byte, p GCRepoPlan, planned map[digest.Digest]bool) (map[digest.Digest]Manifest, error) {
	mb := tx.Bucket(bucketManifests)
	tagged := map[digest.Digest]bool{}
	c := tx.Bucket(bucketTags).Cursor()
	for k, v := c.Seek(id); k != nil && bytes.HasPrefix(k, id); k, v = c.Next() {
		if d, _, ok := decodeTag(v); ok {
			tagged[d] = true
		}
	}
	doomed := map[digest.Digest]Manifest{}
	for _, d := range p.Manifests {
		k := digestAt(id, d)
		rec := mb.Get(k)
		if rec == nil || tagged[d] {
			continue
		}
		m, err := decodeManifest(d, rec, true, false)
		if err != nil {
			return nil, err
		}
		if m.Pushed.Before(p.Cutoff) && s.used(tx.Bucket(bucketPulls), k, p.Repo, d).Before(p.Cutoff) {
			doomed[d] = m
		}
		s.releaseMappedIn(tx)
	}
	// Survivors the plan did not account for can keep doomed manifests
	// alive; so can doomed ones that are kept, in turn.
	var queue []Manifest
	c = mb.Cursor()
	for k, v := c.Seek(id); k != nil && bytes.HasPrefix(k, id); k, v = c.Next() {
		d, ok := decodeDigest(k[len(id):])
		if !ok {
			return nil, fmt.Errorf("manifest key %x: corrupt", k)
		}
		_, isDoomed := doomed[d]
		if (p.Known != nil && p.Known[d] && !planned[d]) || isDoomed {
			continue
		}
		m, err := decodeManifest(d, v, true, false)
		if err != nil {
			return nil, err
		}
		queue = append(queue, m)
		s.releaseMappedIn(tx)
	}
	for {
		for len(queue) > 0 {
			m := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			for _, child := range m.Manifests {
				if cm, ok := doomed[child]; ok {
					delete(doomed, child)
					queue = append(queue, cm)
				}
			}
			for d, r := range doomed {
				if r.Subject == m.Digest {
					delete(doomed, d)
					queue = append(queue, r)
				}
			}
		}
		// A referrer goes only with its subject, or without one.
		for d, r := range doomed {
			if _, subjectDoomed := doomed[r.Subject]; r.Subject != "" && !subjectDoomed && mb.Get(digestAt(id, r.Subject)) != nil {
				delete(doomed, d)
				queue = append(queue, r)
			}
		}
		if len(queue) == 0 {
			return doomed, nil
		}
	}
}

// survivorBlobs returns the blobs referenced by manifests that stay and
// that the plan did not account for.
func (s *Store) survivorBlobs(tx *bolt.Tx, id []byte, p GCRepoPlan, planned map[digest.Digest]bool, doomed map[digest.Digest]Manifest) (map[digest.Digest]bool, error) {
	out := map[digest.Digest]bool{}
	if len(p.Links) == 0 {
		return out, nil
	}
	c := tx.Bucket(bucketManifests).Cursor()
	for k, v := c.Seek(id); k != nil && bytes.HasPrefix(k, id); k, v = c.Next() {
		d, ok := decodeDigest(k[len(id):])
		if !ok {
			return nil, fmt.Errorf("manifest key %x: corrupt", k)
		}
		if _, ok := doomed[d]; ok || (p.Known != nil && p.Known[d] && !planned[d]) {
			continue
		}
		m, err := decodeManifest(d, v, true, false)
		if err != nil {
			return nil, err
		}
		for _, b := range m.Blobs {
			out[b] = true
		}
		s.releaseMappedIn(tx)
	}
	return out, nil
}

// removeManifest deletes manifest d, its tags, its referrer entry and its
// pull time.
func removeManifest(tx *bolt.Tx, id []byte, d, subject digest.Digest) error {
	if subject != "" {
		if err := tx.Bucket(bucketReferrers).Delete(referrerKey(id, subject, d)); err != nil {
			return err
		}
	}
	if err := deleteTagsOf(tx, id, d); err != nil {
		return err
	}
	if err := tx.Bucket(bucketManifests).Delete(digestAt(id, d)); err != nil {
		return err
	}
	return tx.Bucket(bucketPulls).Delete(digestAt(id, d))
}

// CollectBlobs deletes the records, then the files, of the blobs among ds
// that, at commit time, no repository links and that were created before
// cutoff. It returns the blobs deleted; a file that failed to delete is
// left to a later pass as an orphan, and its error returned.
func (s *Store) CollectBlobs(ctx context.Context, ds []digest.Digest, cutoff time.Time) ([]BlobInfo, error) {
	defer s.releaseMapped()
	unlock := lockBlobs(ds)
	var deleted []BlobInfo
	var locs map[digest.Digest]string // where each deleted blob's bytes are
	err := s.commit.update(func(tx *bolt.Tx) error {
		deleted, locs = nil, map[digest.Digest]string{}
		blobs := tx.Bucket(bucketBlobs)
		var cand []BlobInfo
		for _, d := range ds {
			if rec, ok := decodeBlobRecord(blobs.Get(digestKey(d))); ok && rec.Created < cutoff.UnixNano() {
				cand = append(cand, BlobInfo{Digest: d, Size: rec.Size})
			}
		}
		if len(cand) == 0 {
			return nil
		}
		// Sorted as the keys are, for markLinked.
		keys := make([][]byte, len(cand))
		for i, b := range cand {
			keys[i] = digestKey(b.Digest)
		}
		sortTogether(keys, cand)
		linked := make([]bool, len(cand))
		links := tx.Bucket(bucketLinks)
		c := tx.Bucket(bucketRepos).Cursor()
		for _, id := c.First(); id != nil; _, id = c.Next() {
			markLinked(links, id, keys, linked)
			s.releaseMappedIn(tx)
		}
		for i, b := range cand {
			if linked[i] {
				continue
			}
			key, err := deleteBlobRecord(tx, b.Digest)
			if err != nil {
				return err
			}
			locs[b.Digest] = key
			deleted = append(deleted, b)
		}
		return nil
	})
	unlock()
	if err != nil {
		return nil, err
	}
	err = s.deleteBlobFiles(ctx, deleted, locs)
	s.commit.reserve.spaceFreed()
	return deleted, err
}

// sortTogether sorts keys, moving blobs[i] with keys[i].
func sortTogether(keys [][]byte, blobs []BlobInfo) {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	k2, b2 := slices.Clone(keys), slices.Clone(blobs)
	for i, j := range idx {
		keys[i], blobs[i] = k2[j], b2[j]
	}
}

// markLinked sets linked[i] when repository id links keys[i]; keys are
// sorted. A batch of a sorted scan spans a narrow range of keys, so one
// cursor stepping through it reads less than a lookup per key; it seeks
// past long gaps.
func markLinked(links *bolt.Bucket, id []byte, keys [][]byte, linked []bool) {
	c := links.Cursor()
	k, _ := c.Seek(key(id, keys[0]))
	for i, steps := 0, 0; i < len(keys) && k != nil && bytes.HasPrefix(k, id); {
		switch bytes.Compare(k[len(id):], keys[i]) {
		case 0:
			linked[i] = true
			i, steps = i+1, 0
			k, _ = c.Next()
		case 1:
			i, steps = i+1, 0
		default:
			if steps++; steps < 8 {
				k, _ = c.Next()
			} else {
				k, _ = c.Seek(key(id, keys[i]))
				steps = 0
			}
		}
	}
}

// deleteBlobFiles deletes the files of blobs whose records are gone, at
// keys, in parallel. Each is deleted under its blob's lock and only if no
// record names it again: an upload of the same bytes since the record went
// has made the file its own.
func (s *Store) deleteBlobFiles(ctx context.Context, blobs []BlobInfo, keys map[digest.Digest]string) error {
	var byStripe [len(blobLocks)][]digest.Digest
	for _, b := range blobs {
		i := blobStripe(b.Digest)
		byStripe[i] = append(byStripe[i], b.Digest)
	}
	var (
		mu   sync.Mutex
		errs []error
		next = make(chan int)
		wg   sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				if err := s.deleteStripeFiles(ctx, i, byStripe[i], keys); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i, ds := range byStripe {
		if len(ds) > 0 {
			next <- i
		}
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// deleteStripeFiles deletes the files of ds, blobs of lock stripe i whose
// records are gone.
func (s *Store) deleteStripeFiles(ctx context.Context, i int, ds []digest.Digest, keys map[digest.Digest]string) error {
	blobLocks[i].Lock()
	defer blobLocks[i].Unlock()
	s.view(func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bucketBlobs)
		ds = slices.DeleteFunc(ds, func(d digest.Digest) bool {
			return blobs.Get(digestKey(d)) != nil && blobLocation(tx, d) == keys[d]
		})
		return nil
	})
	var errs []error
	for _, d := range ds {
		if err := s.blobs.Delete(ctx, keys[d]); err != nil {
			errs = append(errs, fmt.Errorf("blob %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// ExpireUploads discards the sessions among ids started before cutoff and
// their bytes. It returns the sessions discarded.
func (s *Store) ExpireUploads(ctx context.Context, ids []string, cutoff time.Time) ([]Upload, error) {
	var out []Upload
	for _, id := range ids {
		up, err := s.expireUpload(ctx, id, cutoff)
		if err != nil {
			return out, err
		}
		if up.ID != "" {
			out = append(out, up)
		}
	}
	return out, nil
}

func (s *Store) expireUpload(ctx context.Context, id string, cutoff time.Time) (Upload, error) {
	defer lockUpload(id)()
	var up Upload
	err := s.commit.update(func(tx *bolt.Tx) error {
		up = Upload{}
		var rec uploadRecord
		b := tx.Bucket(bucketUploads)
		if !getJSON(b, []byte(id), &rec) || rec.Started >= cutoff.UnixNano() {
			return nil
		}
		up = Upload{ID: id, Repo: rec.Repo, Offset: rec.Offset, Started: time.Unix(0, rec.Started)}
		return deleteSession(tx, id)
	})
	if err != nil || up.ID == "" {
		return up, err
	}
	err = s.blobs.Delete(ctx, uploadKey(id))
	s.commit.reserve.spaceFreed()
	return up, err
}
