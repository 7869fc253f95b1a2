package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
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
const scanBudget = 16384

// ScanRepos calls fn with each repository, reading several small ones,
// or one large one, per short read transaction. fn runs outside any
// transaction.
func (s *Store) ScanRepos(ctx context.Context, fn func(*GCRepo) error) error {
	names, _, err := s.Repositories(ctx, "", -1)
	if err != nil {
		return err
	}
	for i := 0; i < len(names); {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []*GCRepo
		err := s.db.View(func(tx *bolt.Tx) error {
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
		for _, r := range batch {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) scanRepo(tx *bolt.Tx, name string) (*GCRepo, error) {
	rb := repoBucket(tx, name)
	if rb == nil {
		return nil, nil
	}
	r := &GCRepo{Name: name}
	err := rb.Bucket(subTags).ForEach(func(k, v []byte) error {
		if d, pushed, ok := decodeTag(v); ok {
			r.Tags = append(r.Tags, GCTag{Name: string(k), Digest: d, Pushed: pushed})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	pulls := rb.Bucket(subPulls)
	err = rb.Bucket(subManifests).ForEach(func(k, v []byte) error {
		d := digest.Digest(k)
		m, err := decodeGCManifest(d, v)
		if err != nil {
			return err
		}
		m.Used = s.used(pulls, name, d)
		r.Manifests = append(r.Manifests, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = rb.Bucket(subLinks).ForEach(func(k, v []byte) error {
		d := digest.Digest(k)
		r.Links = append(r.Links, GCLink{Digest: d, Linked: decodeTime(v), Checked: s.checks.last(name, d)})
		return nil
	})
	return r, err
}

// decodeGCManifest decodes only what GC reads of a manifest record: not
// its annotations, artifact type or bytes.
func decodeGCManifest(d digest.Digest, rec []byte) (GCManifest, error) {
	r, err := splitManifest(d, rec)
	if err != nil {
		return GCManifest{}, err
	}
	var meta struct {
		Subject   digest.Digest   `json:"subject"`
		Blobs     []digest.Digest `json:"blobs"`
		Manifests []digest.Digest `json:"manifests"`
		Pushed    time.Time       `json:"pushed"`
	}
	if err := json.Unmarshal(r.meta, &meta); err != nil {
		return GCManifest{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	return GCManifest{
		Digest: d, Size: int64(len(r.content)), Pushed: meta.Pushed,
		Subject: meta.Subject, Blobs: meta.Blobs, Manifests: meta.Manifests,
	}, nil
}

// decodeTime decodes a value written by putTime, zero if malformed.
func decodeTime(v []byte) time.Time {
	if len(v) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v)))
}

// used is the latest pull or check of manifest d: recorded, pending or in
// memory.
func (s *Store) used(pulls *bolt.Bucket, repo string, d digest.Digest) time.Time {
	t, _ := getTime(pulls, []byte(d))
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
		s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketBlobs).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && string(k) == string(after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(batch) < 4096; k, v = c.Next() {
				if rec, ok := decodeBlobRecord(v); ok {
					batch = append(batch, GCBlob{Digest: digest.Digest(k), Size: rec.Size, Created: time.Unix(0, rec.Created)})
				}
				after = append(after[:0], k...)
			}
			return nil
		})
		for _, b := range batch {
			if err := fn(b); err != nil {
				return err
			}
		}
		if len(batch) < 4096 {
			return nil
		}
	}
}

// decodeBlobRecord decodes a blob record, reading the layout json.Marshal
// writes without reflection and falling back to encoding/json otherwise.
func decodeBlobRecord(v []byte) (blobRecord, bool) {
	var rec blobRecord
	if rest, ok := bytes.CutPrefix(v, []byte(`{"size":`)); ok {
		size, rest, ok1 := cutInt(rest)
		if rest, ok2 := bytes.CutPrefix(rest, []byte(`,"created":`)); ok1 && ok2 {
			created, rest, ok := cutInt(rest)
			if ok && string(rest) == "}" {
				return blobRecord{Size: size, Created: created}, true
			}
		}
	}
	return rec, json.Unmarshal(v, &rec) == nil
}

// cutInt parses the decimal integer at the start of b.
func cutInt(b []byte) (int64, []byte, bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(string(b[:i]), 10, 64)
	return n, b[i:], err == nil
}

// ScanUploads calls fn with every open upload session.
func (s *Store) ScanUploads(ctx context.Context, fn func(Upload) error) error {
	var ups []Upload
	err := s.db.View(func(tx *bolt.Tx) error {
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
		referenced, err := survivorBlobs(rb, p, planned, doomed)
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
func survivorBlobs(rb *bolt.Bucket, p GCRepoPlan, planned map[digest.Digest]bool, doomed map[digest.Digest]Manifest) (map[digest.Digest]bool, error) {
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
	if err := deleteTagsOf(rb.Bucket(subTags), d); err != nil {
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
	unlock := lockBlobs(ds)
	var deleted []BlobInfo
	err := s.commit.update(func(tx *bolt.Tx) error {
		deleted = nil
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
		}
		for i, b := range cand {
			if linked[i] {
				continue
			}
			if err := blobs.Delete([]byte(b.Digest)); err != nil {
				return err
			}
			deleted = append(deleted, b)
		}
		return nil
	})
	unlock()
	if err != nil {
		return nil, err
	}
	return deleted, s.deleteBlobFiles(ctx, deleted)
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

// deleteBlobFiles deletes the files of blobs whose records are gone, in
// parallel. Each is deleted under its blob's lock and only if its record
// is still absent: an upload of the same bytes since the record went has
// made the file its own.
func (s *Store) deleteBlobFiles(ctx context.Context, blobs []BlobInfo) error {
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
				if err := s.deleteStripeFiles(ctx, i, byStripe[i]); err != nil {
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
func (s *Store) deleteStripeFiles(ctx context.Context, i int, ds []digest.Digest) error {
	blobLocks[i].Lock()
	defer blobLocks[i].Unlock()
	s.db.View(func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bucketBlobs)
		ds = slices.DeleteFunc(ds, func(d digest.Digest) bool { return blobs.Get([]byte(d)) != nil })
		return nil
	})
	var errs []error
	for _, d := range ds {
		if err := s.blobs.Delete(ctx, blobKey(d)); err != nil {
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
		return b.Delete([]byte(id))
	})
	if err != nil || up.ID == "" {
		return up, err
	}
	return up, s.blobs.Delete(ctx, uploadKey(id))
}

// GCFile is a file in the blob store that no metadata knows.
type GCFile struct {
	Key  string
	Size int64
	// FirstSeen is when GC first noted it at this size, zero if never.
	FirstSeen time.Time
}

// ScanOrphanFiles calls fn with every file under blobs/ and uploads/ that
// has no blob record or upload session.
func (s *Store) ScanOrphanFiles(ctx context.Context, fn func(GCFile) error) error {
	type noted struct {
		f          GCFile
		first      time.Time
		size       int64
		seenBefore bool
	}
	var batch []GCFile
	flush := func() error {
		var orphans []noted
		s.db.View(func(tx *bolt.Tx) error {
			seen := tx.Bucket(bucketOrphans)
			for _, f := range batch {
				if s.knownFile(tx, f.Key) {
					continue
				}
				o := noted{f: f}
				if seen != nil {
					o.first, o.size, o.seenBefore = decodeOrphan(seen.Get([]byte(f.Key)))
				}
				orphans = append(orphans, o)
			}
			return nil
		})
		batch = batch[:0]
		for _, o := range orphans {
			if o.f.Size < 0 { // listed without its size
				size, err := s.blobs.Stat(ctx, o.f.Key)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				o.f.Size = size
			}
			if o.seenBefore && o.size == o.f.Size {
				o.f.FirstSeen = o.first
			}
			if err := fn(o.f); err != nil {
				return err
			}
		}
		return nil
	}
	add := func(key string, size int64) error {
		batch = append(batch, GCFile{Key: key, Size: size})
		if len(batch) == 1024 {
			return flush()
		}
		return nil
	}
	for _, prefix := range []string{"blobs", "uploads"} {
		var err error
		if kl, ok := s.blobs.(keyLister); ok {
			err = kl.WalkKeys(ctx, prefix, func(key string) error { return add(key, -1) })
		} else {
			err = s.blobs.Walk(ctx, prefix, add)
		}
		if err != nil {
			return err
		}
	}
	return flush()
}

// keyLister is implemented by drivers that list keys faster without their
// sizes: a filesystem stats each file for its size. Orphan scans then
// size only the files metadata does not know.
type keyLister interface {
	// WalkKeys calls fn for every key under prefix, in no particular
	// order.
	WalkKeys(ctx context.Context, prefix string, fn func(key string) error) error
}

// knownFile reports whether metadata names key: a blob record for a blob
// key, a session for an upload key.
func (s *Store) knownFile(tx *bolt.Tx, key string) bool {
	if d, ok := blobKeyDigest(key); ok {
		return tx.Bucket(bucketBlobs).Get([]byte(d)) != nil
	}
	if id, ok := strings.CutPrefix(key, "uploads/"); ok && validUploadID(id) {
		return tx.Bucket(bucketUploads).Get([]byte(id)) != nil
	}
	return false
}

// blobKeyDigest is the inverse of blobKey.
func blobKeyDigest(key string) (digest.Digest, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 || parts[0] != "blobs" {
		return "", false
	}
	d := digest.Digest(parts[1] + ":" + parts[3])
	if d.Validate() != nil || blobKey(d) != key {
		return "", false
	}
	return d, true
}

func encodeOrphan(first time.Time, size int64) []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(first.UnixNano()))
	return binary.BigEndian.AppendUint64(v, uint64(size))
}

func decodeOrphan(v []byte) (time.Time, int64, bool) {
	if len(v) != 16 {
		return time.Time{}, 0, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), int64(binary.BigEndian.Uint64(v[8:])), true
}

// NoteOrphans records the orphan files of a scan: those never seen at
// their size are noted as first seen at now, and notes of files no longer
// orphans are dropped.
func (s *Store) NoteOrphans(ctx context.Context, files []GCFile, now time.Time) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketOrphans)
		if err != nil {
			return err
		}
		current := make(map[string]bool, len(files))
		for _, f := range files {
			current[f.Key] = true
			if _, size, ok := decodeOrphan(b.Get([]byte(f.Key))); ok && size == f.Size && !f.FirstSeen.IsZero() {
				continue
			}
			if err := b.Put([]byte(f.Key), encodeOrphan(now, f.Size)); err != nil {
				return err
			}
		}
		var stale [][]byte
		b.ForEach(func(k, _ []byte) error {
			if !current[string(k)] {
				stale = append(stale, []byte(string(k)))
			}
			return nil
		})
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteOrphanFiles deletes the files among files that, re-checked under
// their lock, metadata still does not know and that were first seen before
// cutoff at their current size. It returns those deleted.
func (s *Store) DeleteOrphanFiles(ctx context.Context, files []GCFile, cutoff time.Time) ([]GCFile, error) {
	var deleted []GCFile
	var errs []error
	for _, f := range files {
		ok, err := s.deleteOrphan(ctx, f.Key, cutoff)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Key, err))
		}
		if ok {
			deleted = append(deleted, f)
		}
	}
	if len(deleted) > 0 {
		err := s.commit.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketOrphans)
			if b == nil {
				return nil
			}
			for _, f := range deleted {
				if err := b.Delete([]byte(f.Key)); err != nil {
					return err
				}
			}
			return nil
		})
		errs = append(errs, err)
	}
	return deleted, errors.Join(errs...)
}

func (s *Store) deleteOrphan(ctx context.Context, key string, cutoff time.Time) (bool, error) {
	if d, ok := blobKeyDigest(key); ok {
		defer lockBlob(d)()
	} else if id, ok := strings.CutPrefix(key, "uploads/"); ok && validUploadID(id) {
		defer lockUpload(id)()
	}
	var first time.Time
	var size int64
	var noted, known bool
	s.db.View(func(tx *bolt.Tx) error {
		known = s.knownFile(tx, key)
		if b := tx.Bucket(bucketOrphans); b != nil {
			first, size, noted = decodeOrphan(b.Get([]byte(key)))
		}
		return nil
	})
	if known || !noted || !first.Before(cutoff) {
		return false, nil
	}
	now, err := s.blobs.Stat(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil || now != size {
		return false, err
	}
	return true, s.blobs.Delete(ctx, key)
}

// PruneChecks forgets blob and manifest checks older than cutoff.
func (s *Store) PruneChecks(cutoff time.Time) { s.checks.prune(cutoff) }

// DeleteTagIf removes tag from repo if it still names d, so a tag pushed
// again since it was planned for deletion stays. It reports whether it
// deleted.
func (s *Store) DeleteTagIf(ctx context.Context, repo, tag string, d digest.Digest) (bool, error) {
	var deleted bool
	err := s.commit.update(func(tx *bolt.Tx) error {
		deleted = false
		rb := repoBucket(tx, repo)
		if rb == nil {
			return nil
		}
		if cur, _, ok := decodeTag(rb.Bucket(subTags).Get([]byte(tag))); !ok || cur != d {
			return nil
		}
		deleted = true
		return rb.Bucket(subTags).Delete([]byte(tag))
	})
	return deleted, err
}
