package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
		rb := repoBucket(tx, p.Repo)
		if rb == nil {
			return nil
		}
		planned := make(map[digest.Digest]bool, len(p.Manifests))
		for _, d := range p.Manifests {
			planned[d] = true
		}
		doomed, err := s.recheckManifests(rb, p, planned)
		if err != nil {
			return err
		}
		referenced, err := s.survivorBlobs(rb, p, planned, doomed)
		if err != nil {
			return err
		}
		for _, d := range p.Manifests {
			m, ok := doomed[d]
			if !ok {
				continue
			}
			if err := removeManifest(rb, d, m.Subject); err != nil {
				return err
			}
			manifests = append(manifests, d)
			s.releaseMappedIn(tx)
		}
		lb := rb.Bucket(subLinks)
		for _, d := range p.Links {
			t, ok := getTime(lb, []byte(d))
			if !ok || !t.Before(p.Cutoff) || referenced[d] || !s.checks.last(p.Repo, d).Before(p.Cutoff) {
				continue
			}
			if err := lb.Delete([]byte(d)); err != nil {
				return err
			}
			links = append(links, d)
			s.releaseMappedIn(tx)
		}
		return dropRepoIfEmpty(tx, p.Repo)
	})
	return manifests, links, err
}

// recheckManifests returns the planned manifests that may still go: then
// untagged, old and unused, and not kept alive by a manifest that stays.
func (s *Store) recheckManifests(rb *bolt.Bucket, p GCRepoPlan, planned map[digest.Digest]bool) (map[digest.Digest]Manifest, error) {
	mb := rb.Bucket(subManifests)
	tagged := map[digest.Digest]bool{}
	rb.Bucket(subTags).ForEach(func(_, v []byte) error {
		if d, _, ok := decodeTag(v); ok {
			tagged[d] = true
		}
		return nil
	})
	doomed := map[digest.Digest]Manifest{}
	for _, d := range p.Manifests {
		rec := mb.Get([]byte(d))
		if rec == nil || tagged[d] {
			continue
		}
		m, err := decodeManifest(d, rec, true, false)
		if err != nil {
			return nil, err
		}
		if m.Pushed.Before(p.Cutoff) && s.used(rb.Bucket(subPulls), p.Repo, d).Before(p.Cutoff) {
			doomed[d] = m
		}
		s.releaseMappedIn(rb.Tx())
	}
	// Survivors the plan did not account for can keep doomed manifests
	// alive; so can doomed ones that are kept, in turn.
	var queue []Manifest
	c := mb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		d := digest.Digest(k)
		_, isDoomed := doomed[d]
		if (p.Known != nil && p.Known[d] && !planned[d]) || isDoomed {
			continue
		}
		m, err := decodeManifest(d, v, true, false)
		if err != nil {
			return nil, err
		}
		queue = append(queue, m)
		s.releaseMappedIn(rb.Tx())
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
			if _, subjectDoomed := doomed[r.Subject]; r.Subject != "" && !subjectDoomed && mb.Get([]byte(r.Subject)) != nil {
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
func (s *Store) survivorBlobs(rb *bolt.Bucket, p GCRepoPlan, planned map[digest.Digest]bool, doomed map[digest.Digest]Manifest) (map[digest.Digest]bool, error) {
	out := map[digest.Digest]bool{}
	if len(p.Links) == 0 {
		return out, nil
	}
	c := rb.Bucket(subManifests).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		d := digest.Digest(k)
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
		s.releaseMappedIn(rb.Tx())
	}
	return out, nil
}

// removeManifest deletes manifest d, its tags, its referrer entry and its
// pull time.
func removeManifest(rb *bolt.Bucket, d, subject digest.Digest) error {
	if subject != "" {
		if err := rb.Bucket(subReferrers).Delete(referrerKey(subject, d)); err != nil {
			return err
		}
	}
	if err := deleteTagsOf(rb, d); err != nil {
		return err
	}
	if err := rb.Bucket(subManifests).Delete([]byte(d)); err != nil {
		return err
	}
	return rb.Bucket(subPulls).Delete([]byte(d))
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
			if rec, ok := decodeBlobRecord(blobs.Get([]byte(d))); ok && rec.Created < cutoff.UnixNano() {
				cand = append(cand, BlobInfo{Digest: d, Size: rec.Size})
			}
		}
		if len(cand) == 0 {
			return nil
		}
		slices.SortFunc(cand, func(a, b BlobInfo) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
		keys := make([][]byte, len(cand))
		for i, b := range cand {
			keys[i] = []byte(b.Digest)
		}
		linked := make([]bool, len(cand))
		repos := tx.Bucket(bucketRepos)
		c := repos.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			markLinked(repos.Bucket(k).Bucket(subLinks), keys, linked)
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

// markLinked sets linked[i] when links holds keys[i]; keys are sorted. A
// batch of a sorted scan spans a narrow range of keys, so one cursor
// stepping through it reads less than a lookup per key; it seeks past
// long gaps.
func markLinked(links *bolt.Bucket, keys [][]byte, linked []bool) {
	c := links.Cursor()
	k, _ := c.Seek(keys[0])
	for i, steps := 0, 0; i < len(keys) && k != nil; {
		switch bytes.Compare(k, keys[i]) {
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
				k, _ = c.Seek(keys[i])
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
	s.db.View(func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bucketBlobs)
		ds = slices.DeleteFunc(ds, func(d digest.Digest) bool {
			return blobs.Get([]byte(d)) != nil && blobLocation(tx, d) == keys[d]
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
