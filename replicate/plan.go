package replicate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ErrNoRepository means the source has no repository a Job selects.
var ErrNoRepository = errors.New("no repository of the source matches")

// Job says what to copy from where to where.
type Job struct {
	From, To Endpoint
	Select   *Selection
	// Prefix is put before each repository name on the target.
	Prefix string
	// Jobs is how many blobs move at once; 0 means 4.
	Jobs int
	// Platforms, when not empty, are the only platforms of an index
	// copied: the index keeps its bytes and lacks the others on the
	// target, which must accept such an index (this registry does from
	// replication).
	Platforms []v1.Platform
}

// ParsePlatform parses "os/arch[/variant]".
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" || strings.Count(s, "/") > 2 {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/arm64", s)
	}
	return *p, nil
}

// wants reports whether the job copies the index child described by c.
func (j Job) wants(c v1.Descriptor) bool {
	if len(j.Platforms) == 0 {
		return true
	}
	if c.Platform == nil {
		return false
	}
	for _, p := range j.Platforms {
		if c.Platform.OS == p.OS && c.Platform.Architecture == p.Architecture && (p.Variant == "" || c.Platform.Variant == p.Variant) {
			return true
		}
	}
	return false
}

// Item is one tag of one source repository and what its copy needs: the
// manifests and blobs the target lacks. A zero Item of a failed plan
// carries Err.
type Item struct {
	Repo, Tag string  // in the source
	Target    string  // repository on the target
	Digest    v1.Hash // of the tagged manifest in the source
	// Manifests are pushed in order: each after what it references and
	// after its subject.
	Manifests []Manifest
	Blobs     []v1.Descriptor
	Err       error
}

// Manifest is a manifest to put on the target, by tag or by digest.
type Manifest struct {
	Ref    string // tag, or digest for untagged children and referrers
	Raw    []byte
	Type   types.MediaType
	Digest v1.Hash
}

// RawManifest and MediaType let a Manifest be put with remote.Put as is.
func (m Manifest) RawManifest() ([]byte, error) { return m.Raw, nil }

// MediaType is the manifest's media type, sent as its Content-Type.
func (m Manifest) MediaType() (types.MediaType, error) { return m.Type, nil }

// Bytes is what the item's copy moves at most: blobs the target repository
// lacks (some may be mounted instead) and manifests.
func (it *Item) Bytes() int64 {
	var n int64
	for _, b := range it.Blobs {
		n += b.Size
	}
	for _, m := range it.Manifests {
		n += int64(len(m.Raw))
	}
	return n
}

// UpToDate reports whether the target already has everything of it.
func (it *Item) UpToDate() bool { return it.Err == nil && len(it.Manifests) == 0 }

// Plan lists the items job selects, each with what the target lacks.
// An error listing the source is returned; an error about one
// repository or tag is carried by its item, so the rest still plans.
func Plan(ctx context.Context, job Job) ([]*Item, error) {
	p, err := newPlanner(ctx, job)
	if err != nil {
		return nil, err
	}
	var catalog []string
	if job.Select.NeedsCatalog() {
		if catalog, err = p.from.Catalog(ctx, job.From.Registry); err != nil {
			return nil, fmt.Errorf("listing the repositories of %s: %w", job.From.Registry, err)
		}
	}
	repos := job.Select.Repos(catalog)
	if len(repos) == 0 {
		return nil, fmt.Errorf("%s: %w; a catalog may list only what the credentials can read: a plain repository name needs none", job.From.Registry, ErrNoRepository)
	}
	var items []*Item
	for _, r := range repos {
		items = append(items, p.repo(ctx, r)...)
	}
	return items, nil
}

// planner reads the source and asks the target what it has, reusing one
// client per side and remembering what it already learned.
type planner struct {
	job      Job
	from, to *remote.Puller
	srcOpts  []remote.Option
	// present holds "repo@digest" for manifests and blobs found on the
	// target, so an item sharing them with an earlier one asks once.
	present map[string]bool
}

func newPlanner(ctx context.Context, job Job) (*planner, error) {
	src, err := remote.NewPuller(job.From.options(ctx)...)
	if err != nil {
		return nil, err
	}
	dst, err := remote.NewPuller(job.To.options(ctx)...)
	if err != nil {
		return nil, err
	}
	srcOpts := append(job.From.options(ctx), remote.Reuse(src))
	return &planner{job: job, from: src, to: dst, srcOpts: srcOpts, present: map[string]bool{}}, nil
}

// PlanRefs plans the copy of refs, tags or digests, of source
// repository repo, whatever job.Select picks. A tag the source no longer
// lists is left out; a digest it no longer has, or a repository it no
// longer has, gives an item whose Err is a 404 (see IsNotFound).
func PlanRefs(ctx context.Context, job Job, repo string, refs []string) ([]*Item, error) {
	p, err := newPlanner(ctx, job)
	if err != nil {
		return nil, err
	}
	return p.refs(ctx, repo, refs), nil
}

// repo plans every selected tag of repository r.
func (p *planner) repo(ctx context.Context, r string) []*Item { return p.refs(ctx, r, nil) }

// refs plans refs of repository r, or the tags the selection picks when
// refs is nil.
func (p *planner) refs(ctx context.Context, r string, refs []string) []*Item {
	target := TargetName(p.job.Prefix, r)
	fail := func(err error) []*Item { return []*Item{{Repo: r, Target: target, Err: err}} }
	srcRepo, err := p.job.From.Repo(r)
	if err != nil {
		return fail(err)
	}
	dstRepo, err := p.job.To.Repo(target)
	if err != nil {
		return fail(fmt.Errorf("target repository %q: %v", target, err))
	}
	all, err := p.from.List(ctx, srcRepo)
	if err != nil {
		return fail(fmt.Errorf("listing tags: %w", err))
	}
	sort.Strings(all)
	if refs == nil {
		refs = p.job.Select.Tags(all)
	} else {
		refs = slices.DeleteFunc(slices.Clone(refs), func(ref string) bool {
			_, notDigest := v1.NewHash(ref)
			return notDigest != nil && !slices.Contains(all, ref)
		})
	}
	var items []*Item
	for _, ref := range refs {
		it := &Item{Repo: r, Tag: ref, Target: target}
		w := &walk{planner: p, item: it, src: srcRepo, dst: dstRepo, seen: map[v1.Hash]bool{}, blobSeen: map[v1.Hash]bool{}}
		it.Err = w.tagged(ctx, ref, all)
		if it.Err != nil {
			it.Manifests, it.Blobs = nil, nil
		}
		items = append(items, it)
	}
	return items
}
