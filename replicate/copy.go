package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// Status is what became of an item.
type Status string

// The statuses of a Result.
const (
	Copied   Status = "copied"
	UpToDate Status = "up to date"
	Failed   Status = "failed"
)

// ErrStopped ends a transfer that a failure elsewhere in its item
// stopped.
var ErrStopped = errors.New("stopped: another blob of the item failed")

// Result is what became of one item: its status, the bytes sent (blobs
// streamed and manifests put; a mounted blob sends none) and, when it
// failed, why.
type Result struct {
	Item   *Item
	Status Status
	Bytes  int64
	Err    error
}

// Observer follows a copy as it goes. Its methods may be called from
// several goroutines at once.
type Observer interface {
	// Blob is told that blob b of it starts to move.
	Blob(it *Item, b v1.Descriptor) Transfer
	// Done is told that an item ended.
	Done(r Result)
}

// Transfer follows one blob: Add with each chunk sent, then End once.
// A blob mounted or found on the target ends having sent nothing.
type Transfer interface {
	Add(n int)
	End(err error)
}

// Apply copies the planned items in order and returns one Result each.
// A failed item does not stop the others.
func Apply(ctx context.Context, job Job, items []*Item, obs Observer) []Result {
	jobs := job.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	src, err := remote.NewPuller(job.From.options(ctx)...)
	if err != nil {
		return failAll(items, err, obs)
	}
	dst, err := remote.NewPusher(append(job.To.options(ctx), remote.WithNondistributable, remote.WithJobs(jobs))...)
	if err != nil {
		return failAll(items, err, obs)
	}
	c := &copier{job: job, jobs: jobs, src: src, dst: dst, obs: obs, placed: map[v1.Hash]name.Repository{}}
	results := make([]Result, 0, len(items))
	for _, it := range items {
		r := c.item(ctx, it)
		obs.Done(r)
		results = append(results, r)
	}
	return results
}

func failAll(items []*Item, err error, obs Observer) []Result {
	var out []Result
	for _, it := range items {
		r := Result{Item: it, Status: Failed, Err: err}
		obs.Done(r)
		out = append(out, r)
	}
	return out
}

type copier struct {
	job  Job
	jobs int
	src  *remote.Puller
	dst  *remote.Pusher
	obs  Observer

	mu sync.Mutex
	// placed holds, for each blob put on the target during the run, a
	// repository there that has it: later items mount it from there.
	placed map[v1.Hash]name.Repository
}

func (c *copier) item(ctx context.Context, it *Item) Result {
	switch {
	case it.Err != nil:
		return Result{Item: it, Status: Failed, Err: it.Err}
	case it.UpToDate():
		return Result{Item: it, Status: UpToDate}
	}
	fail := func(sent int64, err error) Result { return Result{Item: it, Status: Failed, Bytes: sent, Err: err} }
	srcRepo, err := c.job.From.Repo(it.Repo)
	if err != nil {
		return fail(0, err)
	}
	dstRepo, err := c.job.To.Repo(it.Target)
	if err != nil {
		return fail(0, err)
	}
	var sent atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.jobs)
	for _, b := range it.Blobs {
		g.Go(func() error {
			t := c.obs.Blob(it, b)
			err := c.blob(gctx, srcRepo, dstRepo, b, func(n int) { sent.Add(int64(n)); t.Add(n) })
			if err != nil && gctx.Err() != nil {
				// Another blob failed first and stopped this one: that
				// failure is the item's reason.
				t.End(ErrStopped)
				return err
			}
			t.End(err)
			if err != nil {
				return fmt.Errorf("blob %s: %w", b.Digest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fail(sent.Load(), err)
	}
	for _, m := range it.Manifests {
		if err := c.dst.Put(ctx, targetRef(dstRepo, m.Ref), m); err != nil {
			if len(c.job.Platforms) > 0 && m.Type.IsIndex() {
				err = fmt.Errorf("%w (the target may refuse an index without all its platforms: copy them all, without --platform)", err)
			}
			return fail(sent.Load(), fmt.Errorf("manifest %s: %w", m.Ref, err))
		}
		sent.Add(int64(len(m.Raw)))
	}
	return Result{Item: it, Status: Copied, Bytes: sent.Load()}
}

// blob puts blob b in dstRepo: mounted from a target repository that has
// it, else streamed from the source, resuming where a cut transfer
// stopped.
func (c *copier) blob(ctx context.Context, srcRepo, dstRepo name.Repository, b v1.Descriptor, add func(int)) error {
	c.mu.Lock()
	from, ok := c.placed[b.Digest]
	c.mu.Unlock()
	var mount name.Reference
	switch {
	case ok && from.String() != dstRepo.String():
		mount = from.Digest(b.Digest.String())
	case srcRepo.Registry.String() == dstRepo.Registry.String():
		mount = srcRepo.Digest(b.Digest.String())
	}
	if mount == nil {
		r, err := c.newResumable(ctx, srcRepo, dstRepo, b, add)
		if err == nil {
			err = r.run(ctx)
		}
		if err != nil {
			return err
		}
	} else {
		l, err := c.src.Layer(ctx, srcRepo.Digest(b.Digest.String()))
		if err != nil {
			return err
		}
		up := &remote.MountableLayer{Layer: &counted{Layer: l, desc: b, add: add}, Reference: mount}
		if err := c.dst.Upload(ctx, dstRepo, up); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.placed[b.Digest] = dstRepo
	c.mu.Unlock()
	return nil
}

// counted is a source blob described by its manifest's descriptor, which
// tells its bytes as they are read.
type counted struct {
	v1.Layer
	desc v1.Descriptor
	add  func(int)
}

func (l *counted) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *counted) Size() (int64, error)                { return l.desc.Size, nil }
func (l *counted) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

func (l *counted) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: rc, add: l.add}, nil
}

type countingReader struct {
	io.ReadCloser
	add func(int)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.add(n)
	}
	return n, err
}
