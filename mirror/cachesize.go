package mirror

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// image is one cached image, the unit of eviction: a manifest that no
// other manifest of its repository lists or refers to (an image manifest
// or an index), with the children and referrers under it.
type image struct {
	up   *Upstream
	repo string
	// digests are the top manifest first, then those under it.
	digests []digest.Digest
	tags    []storage.GCTag
	// blobs are the blobs they reference that the repository links.
	blobs []digest.Digest
	bytes int64 // of the manifests
	// used is the latest caching, pull or check of any of its manifests
	// and blobs.
	used time.Time
}

// tally is the size of a set of cached images (one upstream's, or every
// upstream's) against its cap.
type tally struct {
	max int64 // 0: no cap
	// size is the bytes of the manifests plus those of the distinct
	// blobs linked to the set's repositories.
	size int64
	// refs counts the images of the set that reference each blob;
	// pinned are blobs linked where no manifest references them.
	refs   map[digest.Digest]int
	pinned map[digest.Digest]bool
}

func newTally(max int64) *tally {
	return &tally{max: max, refs: map[digest.Digest]int{}, pinned: map[digest.Digest]bool{}}
}

func (t *tally) over() bool { return t.max > 0 && t.size > t.max }

// drop takes img out of t. A blob counts as freed when no image left
// references it and no repository of the set links it otherwise; one
// that a local repository also links is counted though it stays.
func (t *tally) drop(img *image, sizes map[digest.Digest]int64) {
	t.size -= img.bytes
	for _, b := range img.blobs {
		if t.refs[b]--; t.refs[b] == 0 && !t.pinned[b] {
			t.size -= sizes[b]
		}
	}
}

// cacheScan is the cached content of some upstreams.
type cacheScan struct {
	images []*image
	sizes  map[digest.Digest]int64
	// per holds each scanned upstream's tally, with its max_size; total,
	// when every upstream was scanned, theirs together, with
	// [mirror] max_size.
	per   map[*Upstream]*tally
	total *tally
}

// scanCache reads the repositories cached from ups, and adds up their
// total when all is set.
func (m *Mirror) scanCache(ctx context.Context, ups []*Upstream, all bool) (*cacheScan, error) {
	sc := &cacheScan{per: map[*Upstream]*tally{}}
	linked := map[*Upstream]map[digest.Digest]bool{}
	union := map[digest.Digest]bool{}
	var manifests int64
	for _, u := range ups {
		t, links := newTally(m.caches[u].max), map[digest.Digest]bool{}
		sc.per[u], linked[u] = t, links
		err := m.store.ScanReposUnder(ctx, u.Hosts[0]+"/", func(r *storage.GCRepo) error {
			imgs := repoImages(r)
			referenced := map[digest.Digest]bool{}
			for _, img := range imgs {
				img.up = u
				t.size += img.bytes
				manifests += img.bytes
				for _, b := range img.blobs {
					t.refs[b]++
					referenced[b] = true
				}
			}
			for _, l := range r.Links {
				links[l.Digest], union[l.Digest] = true, true
				if !referenced[l.Digest] {
					t.pinned[l.Digest] = true
				}
			}
			sc.images = append(sc.images, imgs...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sc.sizes = m.store.BlobSizes(ctx, slices.Collect(maps.Keys(union)))
	for _, u := range ups {
		for b := range linked[u] {
			sc.per[u].size += sc.sizes[b]
		}
	}
	if all {
		sc.total = newTally(m.total.max)
		sc.total.size = manifests
		for _, n := range sc.sizes {
			sc.total.size += n
		}
		for _, t := range sc.per {
			for b, n := range t.refs {
				sc.total.refs[b] += n
			}
			for b := range t.pinned {
				sc.total.pinned[b] = true
			}
		}
	}
	return sc, nil
}

// repoImages groups the manifests of r into images.
func repoImages(r *storage.GCRepo) []*image {
	byDigest := make(map[digest.Digest]*storage.GCManifest, len(r.Manifests))
	under := map[digest.Digest][]digest.Digest{} // children and referrers
	isChild := map[digest.Digest]bool{}
	for i := range r.Manifests {
		m := &r.Manifests[i]
		byDigest[m.Digest] = m
		for _, c := range m.Manifests {
			isChild[c] = true
			under[m.Digest] = append(under[m.Digest], c)
		}
		if m.Subject != "" {
			under[m.Subject] = append(under[m.Subject], m.Digest)
		}
	}
	links := make(map[digest.Digest]storage.GCLink, len(r.Links))
	for _, l := range r.Links {
		links[l.Digest] = l
	}
	tags := map[digest.Digest][]storage.GCTag{}
	for _, t := range r.Tags {
		tags[t.Digest] = append(tags[t.Digest], t)
	}
	var out []*image
	for _, m := range r.Manifests {
		if isChild[m.Digest] || (m.Subject != "" && byDigest[m.Subject] != nil) {
			continue
		}
		img := &image{repo: r.Name}
		seen := map[digest.Digest]bool{}
		for queue := []digest.Digest{m.Digest}; len(queue) > 0; {
			d := queue[0]
			queue = queue[1:]
			mm := byDigest[d]
			if mm == nil || seen[d] {
				continue
			}
			seen[d] = true
			img.digests = append(img.digests, d)
			img.tags = append(img.tags, tags[d]...)
			img.bytes += mm.Size
			img.used = latest(img.used, mm.Pushed, mm.Used)
			for _, b := range mm.Blobs {
				if l, ok := links[b]; ok && !slices.Contains(img.blobs, b) {
					img.blobs = append(img.blobs, b)
					img.used = latest(img.used, l.Linked, l.Checked)
				}
			}
			queue = append(queue, under[d]...)
		}
		out = append(out, img)
	}
	return out
}

func latest(t time.Time, more ...time.Time) time.Time {
	for _, u := range more {
		if u.After(t) {
			t = u
		}
	}
	return t
}

// victims picks, least recently used first, the images whose eviction
// brings every tally of sc under its cap: an image goes while its
// upstream's tally or the total is over. It skips images used at or after
// cutoff and repositories busy reports a client is reading. sc stays as
// measured.
func (sc *cacheScan) victims(cutoff time.Time, busy func(repo string) bool) []*image {
	sc = sc.clone()
	imgs := slices.Clone(sc.images)
	slices.SortStableFunc(imgs, func(a, b *image) int { return a.used.Compare(b.used) })
	var out []*image
	for _, img := range imgs {
		if !sc.over() {
			break
		}
		t := sc.per[img.up]
		if !t.over() && (sc.total == nil || !sc.total.over()) {
			continue
		}
		if !img.used.Before(cutoff) || busy(img.repo) {
			continue
		}
		out = append(out, img)
		t.drop(img, sc.sizes)
		if sc.total != nil {
			sc.total.drop(img, sc.sizes)
		}
	}
	return out
}

// clone returns a copy of sc whose tallies can change without changing
// sc's.
func (sc *cacheScan) clone() *cacheScan {
	c := *sc
	c.per = make(map[*Upstream]*tally, len(sc.per))
	for u, t := range sc.per {
		c.per[u] = t.clone()
	}
	if sc.total != nil {
		c.total = sc.total.clone()
	}
	return &c
}

func (t *tally) clone() *tally {
	c := *t
	c.refs = maps.Clone(t.refs)
	return &c
}

// over reports whether any tally of sc is over its cap.
func (sc *cacheScan) over() bool {
	if sc.total != nil && sc.total.over() {
		return true
	}
	for _, t := range sc.per {
		if t.over() {
			return true
		}
	}
	return false
}
