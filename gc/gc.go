package gc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// Options tunes one pass.
type Options struct {
	Grace                 time.Duration
	DeleteUntagged        bool
	DeleteOrphanReferrers bool
	UploadMaxAge          time.Duration
	// Pace is the share of wall time the pass may work, between 0 and
	// 1; it pauses the rest, in short slices, so requests served
	// meanwhile keep their latency. 0 or 1: no pauses.
	Pace float64
	// Now is the pass's clock; zero means time.Now().
	Now time.Time
	// Progress, if not nil, counts the pass's work as it goes.
	Progress *Progress
}

// Kind is what a plan item deletes.
type Kind uint8

// The kinds of item, in the order Apply deletes them.
const (
	KindManifest Kind = iota + 1
	KindLink
	KindBlob
	KindUpload
	KindFile
)

var kindNames = [...]string{KindManifest: "manifest", KindLink: "link", KindBlob: "blob", KindUpload: "upload", KindFile: "file"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Reason is why an item is deleted. Kind and Reason are a byte each so
// that an item, of which a pass over a large store plans hundreds of
// thousands, stays at 64 bytes.
type Reason uint8

// Reasons an item is deleted.
const (
	ReasonUntagged Reason = iota + 1
	ReasonSubjectGone
	ReasonUnreferenced
	ReasonUnlinked
	ReasonUploadExpired
	ReasonUnknownFile
)

var reasonTexts = [...]string{
	ReasonUntagged:      "untagged, nothing refers to it",
	ReasonSubjectGone:   "referrer whose subject is gone",
	ReasonUnreferenced:  "no manifest in the repository references it",
	ReasonUnlinked:      "no repository links it",
	ReasonUploadExpired: "upload session expired",
	ReasonUnknownFile:   "file unknown to metadata",
}

func (r Reason) String() string {
	if int(r) < len(reasonTexts) && reasonTexts[r] != "" {
		return reasonTexts[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Item is one thing a pass deletes. Repo is empty for blobs and files;
// Key names an upload session or file.
type Item struct {
	Kind   Kind
	Reason Reason
	Repo   string
	Digest digest.Digest
	Key    string
	Size   int64
}

// PassPlan is what a pass would delete, and why.
type PassPlan struct {
	Now, Cutoff, UploadCutoff time.Time
	Items                     []Item
	// Bytes is what deleting the blobs, uploads and files would free.
	Bytes int64
	// Waiting are unknown files noted but still within the grace period.
	Waiting int
	// WaitingBytes is what the grace period alone keeps: blobs nothing
	// tagged refers to and unknown files, too recent to delete yet. If
	// nothing changes, a pass at Now plus the grace period frees them.
	WaitingBytes int64

	// OnDeleted, if set, is called by Apply with each item it deleted.
	OnDeleted func(Item)
	// Progress, from Options, counts Apply's deletions.
	Progress *Progress

	known   map[string]map[digest.Digest]bool // repos with items only
	orphans []storage.GCFile
	pace    *pacer
}

// Plan computes what a pass would delete from store, reading metadata in
// short transactions. It changes nothing.
func Plan(ctx context.Context, store *storage.Store, opts Options) (*PassPlan, error) {
	if newPacer(opts.Pace) == nil {
		defer tightHeap()()
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	p := &PassPlan{Now: now, Cutoff: now.Add(-opts.Grace), UploadCutoff: now.Add(-opts.UploadMaxAge),
		known: map[string]map[digest.Digest]bool{}, pace: newPacer(opts.Pace), Progress: opts.Progress}
	linked, eventual := linkedSet{}, linkedSet{}
	err := store.ScanRepos(ctx, func(r *storage.GCRepo) error {
		p.planRepo(r, opts, linked, eventual)
		p.Progress.scannedRepo()
		return p.pace.yield(ctx)
	})
	if err != nil {
		return nil, err
	}
	err = store.ScanBlobs(ctx, func(b storage.GCBlob) error {
		switch {
		case !linked.has(b.Digest) && b.Created.Before(p.Cutoff):
			p.Items = append(p.Items, Item{Kind: KindBlob, Digest: b.Digest, Size: b.Size, Reason: ReasonUnlinked})
			p.Bytes += b.Size
		case !eventual.has(b.Digest):
			p.WaitingBytes += b.Size
		}
		p.Progress.scannedBlob()
		return p.pace.yield(ctx)
	})
	if err != nil {
		return nil, err
	}
	linked, eventual = nil, nil
	err = store.ScanUploads(ctx, func(u storage.Upload) error {
		if u.Started.Before(p.UploadCutoff) {
			p.Items = append(p.Items, Item{Kind: KindUpload, Repo: u.Repo, Key: u.ID, Size: u.Offset, Reason: ReasonUploadExpired})
			p.Bytes += u.Offset
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = store.ScanOrphanFiles(ctx, func(f storage.GCFile) error {
		p.orphans = append(p.orphans, f)
		if f.FirstSeen.IsZero() || !f.FirstSeen.Before(p.Cutoff) {
			p.Waiting++
			p.WaitingBytes += f.Size
			return nil
		}
		p.Items = append(p.Items, Item{Kind: KindFile, Key: f.Key, Size: f.Size, Reason: ReasonUnknownFile})
		p.Bytes += f.Size
		return p.pace.yield(ctx)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// linkedSet holds the blobs some repository keeps linked, by a 64-bit
// hash of the digest: an eighth of the memory of the digests themselves
// over hundreds of thousands of blobs. Two digests sharing a hash would
// keep an unlinked blob one more pass, never delete a linked one.
type linkedSet map[uint64]struct{}

// linkedKey is FNV-1a, inline so that it allocates nothing.
func linkedKey(d digest.Digest) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(d); i++ {
		h ^= uint64(d[i])
		h *= 1099511628211
	}
	return h
}

func (s linkedSet) add(d digest.Digest)      { s[linkedKey(d)] = struct{}{} }
func (s linkedSet) has(d digest.Digest) bool { _, ok := s[linkedKey(d)]; return ok }

// planRepo adds r's manifests and links to p, the blobs r keeps linked
// to linked, and those it would keep once the grace period is over, if
// nothing changed meanwhile, to eventual.
func (p *PassPlan) planRepo(r *storage.GCRepo, opts Options, linked, eventual linkedSet) {
	byDigest := make(map[digest.Digest]*storage.GCManifest, len(r.Manifests))
	referrers := map[digest.Digest][]digest.Digest{}
	for i := range r.Manifests {
		m := &r.Manifests[i]
		byDigest[m.Digest] = m
		if m.Subject != "" {
			referrers[m.Subject] = append(referrers[m.Subject], m.Digest)
		}
	}
	keep := keptManifests(r, byDigest, referrers, opts, p.Cutoff)
	for d := range keptManifests(r, byDigest, referrers, opts, p.Now) {
		for _, b := range byDigest[d].Blobs {
			eventual.add(b)
		}
	}
	referenced := map[digest.Digest]bool{}
	var items []Item
	for _, m := range r.Manifests {
		if keep[m.Digest] {
			for _, b := range m.Blobs {
				referenced[b] = true
			}
			continue
		}
		reason := ReasonUntagged
		if m.Subject != "" && !keep[m.Subject] {
			reason = ReasonSubjectGone
		}
		items = append(items, Item{Kind: KindManifest, Repo: r.Name, Digest: m.Digest, Size: m.Size, Reason: reason})
	}
	for _, l := range r.Links {
		if referenced[l.Digest] || !l.Linked.Before(p.Cutoff) || !l.Checked.Before(p.Cutoff) {
			linked.add(l.Digest)
			continue
		}
		items = append(items, Item{Kind: KindLink, Repo: r.Name, Digest: l.Digest, Reason: ReasonUnreferenced})
	}
	if len(items) > 0 {
		known := make(map[digest.Digest]bool, len(r.Manifests))
		for _, m := range r.Manifests {
			known[m.Digest] = true
		}
		p.known[r.Name] = known
		p.Items = append(p.Items, items...)
	}
}

// keptManifests is the set of r's manifests a pass with cutoff keeps:
// the tagged ones, those pushed or used since cutoff, the untagged ones
// opts keeps, and everything these refer to or that refers to them.
func keptManifests(r *storage.GCRepo, byDigest map[digest.Digest]*storage.GCManifest, referrers map[digest.Digest][]digest.Digest, opts Options, cutoff time.Time) map[digest.Digest]bool {
	keep := make(map[digest.Digest]bool, len(r.Manifests))
	var queue []digest.Digest
	root := func(d digest.Digest) {
		if _, ok := byDigest[d]; ok && !keep[d] {
			keep[d] = true
			queue = append(queue, d)
		}
	}
	for _, t := range r.Tags {
		root(t.Digest)
	}
	for _, m := range r.Manifests {
		recent := !m.Pushed.Before(cutoff) || !m.Used.Before(cutoff)
		switch {
		case recent,
			!opts.DeleteUntagged && m.Subject == "",
			!opts.DeleteUntagged && !opts.DeleteOrphanReferrers:
			root(m.Digest)
		}
	}
	for len(queue) > 0 {
		m := byDigest[queue[len(queue)-1]]
		queue = queue[:len(queue)-1]
		for _, c := range m.Manifests {
			root(c)
		}
		for _, ref := range referrers[m.Digest] {
			root(ref)
		}
	}
	return keep
}

// Result is what Apply deleted.
type Result struct {
	Manifests, Links, Blobs, Uploads, Files int
	// Bytes freed by deleting blobs, uploads and files.
	Bytes int64
	// Skipped counts planned items that no longer qualified.
	Skipped int
	// Failed counts planned items not deleted because of an error, which
	// Apply returns.
	Failed int
	// WaitingBytes and CollectableBy are the plan's: what only the grace
	// period kept, and when a pass frees it if nothing changes.
	WaitingBytes  int64
	CollectableBy time.Time
}

// blobBatch bounds the blobs deleted per write transaction, and so how
// long pushes of the same blobs wait on their locks and other writers on
// the transaction.
const blobBatch = 512

// repoWorkers is how many repositories are collected at once. Their
// write transactions are shared by the store's group commit, so a pass
// over many repositories pays for fewer commits.
const repoWorkers = 8

type repoCollected struct {
	manifests, links []digest.Digest
	err              error
}

// collectRepos runs store.CollectRepo for each of repos, in order of
// their index in the result.
func collectRepos(ctx context.Context, store *storage.Store, repos []string, plans map[string]*storage.GCRepoPlan, pace *pacer) []repoCollected {
	out := make([]repoCollected, len(repos))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(repoWorkers, len(repos)) {
		wg.Go(func() {
			for i := range next {
				c := &out[i]
				c.manifests, c.links, c.err = store.CollectRepo(ctx, *plans[repos[i]])
				pace.yield(ctx)
			}
		})
	}
	for i := range repos {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// Apply deletes the items of p that still qualify, re-checked in the
// store's write transactions, and records the orphan files p saw so a
// later pass can delete them once past the grace period. Errors deleting
// files are returned after everything else was tried: those files become
// orphans for the next pass.
func Apply(ctx context.Context, store *storage.Store, p *PassPlan) (Result, error) {
	if p.pace == nil {
		defer tightHeap()()
	}
	var res Result
	deleted := 0
	p.Progress.startDeleting(len(p.Items))
	done := func(it Item) {
		deleted++
		p.Progress.deleted(it)
		if p.OnDeleted != nil {
			p.OnDeleted(it)
		}
	}
	var errs []error
	byRepo := map[string]*storage.GCRepoPlan{}
	var repos []string
	var blobs []digest.Digest
	var uploads []string
	var files []storage.GCFile
	for _, it := range p.Items {
		switch it.Kind {
		case KindManifest, KindLink:
			rp := byRepo[it.Repo]
			if rp == nil {
				rp = &storage.GCRepoPlan{Repo: it.Repo, Known: p.known[it.Repo], Cutoff: p.Cutoff}
				byRepo[it.Repo] = rp
				repos = append(repos, it.Repo)
			}
			if it.Kind == KindManifest {
				rp.Manifests = append(rp.Manifests, it.Digest)
			} else {
				rp.Links = append(rp.Links, it.Digest)
			}
		case KindBlob:
			blobs = append(blobs, it.Digest)
		case KindUpload:
			uploads = append(uploads, it.Key)
		case KindFile:
			files = append(files, storage.GCFile{Key: it.Key, Size: it.Size})
		}
	}
	planned := len(p.Items)
	for i, c := range collectRepos(ctx, store, repos, byRepo, p.pace) {
		name := repos[i]
		if c.err != nil {
			errs = append(errs, fmt.Errorf("repository %s: %w", name, c.err))
			res.Failed += len(byRepo[name].Manifests) + len(byRepo[name].Links)
			continue
		}
		res.Manifests += len(c.manifests)
		res.Links += len(c.links)
		for _, d := range c.manifests {
			done(Item{Kind: KindManifest, Repo: name, Digest: d})
		}
		for _, d := range c.links {
			done(Item{Kind: KindLink, Repo: name, Digest: d})
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	for i := 0; i < len(blobs); i += blobBatch {
		if err := p.pace.yield(ctx); err != nil {
			return res, err
		}
		batch := blobs[i:min(i+blobBatch, len(blobs))]
		deleted, err := store.CollectBlobs(ctx, batch, p.Cutoff)
		if err != nil {
			errs = append(errs, err)
			if deleted == nil { // the transaction failed, not a file
				res.Failed += len(batch)
			}
		}
		for _, b := range deleted {
			res.Blobs++
			res.Bytes += b.Size
			done(Item{Kind: KindBlob, Digest: b.Digest, Size: b.Size})
		}
	}
	ups, err := store.ExpireUploads(ctx, uploads, p.UploadCutoff)
	if err != nil {
		errs = append(errs, err)
		res.Failed += len(uploads) - len(ups)
	}
	for _, u := range ups {
		res.Uploads++
		res.Bytes += u.Offset
		done(Item{Kind: KindUpload, Repo: u.Repo, Key: u.ID, Size: u.Offset})
	}
	if _, err := store.AbortMultipartUploads(ctx); err != nil {
		errs = append(errs, err)
	}
	// A blob whose composition an abort above cut short, or that failed,
	// is composed again.
	store.WakeComposer()
	defer store.WakeCompactor() // deletions leave pages free
	deletedFiles, err := store.DeleteOrphanFiles(ctx, files, p.Cutoff)
	if err != nil {
		errs = append(errs, err)
		res.Failed += len(files) - len(deletedFiles)
	}
	gone := map[string]bool{}
	for _, f := range deletedFiles {
		gone[f.Key] = true
		res.Files++
		res.Bytes += f.Size
		done(Item{Kind: KindFile, Key: f.Key, Size: f.Size})
	}
	var remaining []storage.GCFile
	for _, f := range p.orphans {
		if !gone[f.Key] {
			remaining = append(remaining, f)
		}
	}
	if err := store.NoteOrphans(ctx, remaining, p.Now); err != nil {
		errs = append(errs, err)
	}
	store.PruneChecks(p.Cutoff)
	res.Skipped = planned - deleted - res.Failed
	res.WaitingBytes, res.CollectableBy = p.WaitingBytes, p.CollectableBy()
	return res, errors.Join(errs...)
}
