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

// cacheScan is one upstream's cached content.
type cacheScan struct {
	images []*image
	// refs counts the images of the scan that reference each blob;
	// pinned are blobs linked where no manifest references them.
	refs   map[digest.Digest]int
	pinned map[digest.Digest]bool
	sizes  map[digest.Digest]int64
	// size is the bytes of the manifests plus those of the distinct
	// blobs linked to the upstream's repositories.
	size int64
}

// scanCache reads the repositories cached from u.
func (m *Mirror) scanCache(ctx context.Context, u *Upstream) (*cacheScan, error) {
	sc := &cacheScan{refs: map[digest.Digest]int{}, pinned: map[digest.Digest]bool{}}
	linked := map[digest.Digest]bool{}
	err := m.store.ScanReposUnder(ctx, u.Hosts[0]+"/", func(r *storage.GCRepo) error {
		imgs := repoImages(r)
		referenced := map[digest.Digest]bool{}
		for _, img := range imgs {
			sc.size += img.bytes
			for _, b := range img.blobs {
				sc.refs[b]++
				referenced[b] = true
			}
		}
		for _, l := range r.Links {
			linked[l.Digest] = true
			if !referenced[l.Digest] {
				sc.pinned[l.Digest] = true
			}
		}
		sc.images = append(sc.images, imgs...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sc.sizes = m.store.BlobSizes(ctx, slices.Collect(maps.Keys(linked)))
	for _, n := range sc.sizes {
		sc.size += n
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
// brings sc under max bytes, skipping images used at or after cutoff and
// repositories busy reports a client is reading. A blob counts as freed
// when no image left references it and no repository of the upstream
// links it otherwise; one that a local repository also links is counted
// though it stays.
func (sc *cacheScan) victims(max int64, cutoff time.Time, busy func(repo string) bool) []*image {
	imgs := slices.Clone(sc.images)
	slices.SortStableFunc(imgs, func(a, b *image) int { return a.used.Compare(b.used) })
	size := sc.size
	var out []*image
	for _, img := range imgs {
		if size <= max {
			break
		}
		if !img.used.Before(cutoff) || busy(img.repo) {
			continue
		}
		out = append(out, img)
		size -= img.bytes
		for _, b := range img.blobs {
			if sc.refs[b]--; sc.refs[b] == 0 && !sc.pinned[b] {
				size -= sc.sizes[b]
			}
		}
	}
	return out
}
