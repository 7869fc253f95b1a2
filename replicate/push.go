package replicate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/nora-registry/nora/storage"
)

// EventLog is the store's event log that push targets consume (see
// storage.Store.RecordEvents).
type EventLog interface {
	RecordEvents(consumers []string) (fresh []string, err error)
	Events(ctx context.Context, consumer string, max int) ([]storage.Event, error)
	AckEvents(ctx context.Context, consumer string, seq uint64) error
	EventBacklog(consumer string) (n uint64, oldest time.Time, err error)
	EventsAdded() <-chan struct{}
}

// batchSize is how many events a push target reads, coalesces and
// acknowledges at once: a crash redelivers at most that many.
const batchSize = 100

// pusher sends this registry's changes to one push target.
type pusher struct {
	*peer
	deletes bool
	events  EventLog
	local   Endpoint
	// consumers says whether the target still needs its initial sync.
	consumers *consumers
}

// run delivers events until ctx ends. The cursor moves past a batch
// only once every step of it succeeded, so a batch cut by a stop or a
// crash is delivered again: copies check the target first, and a delete
// of what is gone counts as done.
func (p *pusher) run(ctx context.Context) {
	if p.consumers.needsSync(p.cfg.Name) {
		if p.retry(ctx, "initial sync", p.syncAll) != nil {
			return
		}
		if err := p.consumers.synced(p.cfg.Name); err != nil {
			// The sync runs again at the next start: a cost, not a loss.
			p.log.Error().Err(err).Msg("recording the end of the initial sync")
		}
		p.log.Info().Msg("initial sync done")
	}
	for ctx.Err() == nil {
		woken := p.events.EventsAdded()
		evs, err := p.events.Events(ctx, p.cfg.Name, batchSize)
		if err != nil {
			p.log.Error().Err(err).Msg("reading the event log")
			sleep(ctx, time.Second)
			continue
		}
		if len(evs) == 0 {
			select {
			case <-ctx.Done():
			case <-woken:
			}
			continue
		}
		for _, s := range coalesce(evs, p.sel, p.deletes) {
			if p.retry(ctx, s.String(), func(ctx context.Context) error { return p.step(ctx, s) }) != nil {
				return
			}
		}
		if err := p.events.AckEvents(ctx, p.cfg.Name, evs[len(evs)-1].Seq); err != nil {
			// The batch is read and delivered again: HEADs and deletes
			// of what is gone, both cheap.
			p.log.Error().Err(err).Msg("acknowledging events")
			sleep(ctx, time.Second)
		}
	}
}

func (s step) String() string {
	if s.copy == nil {
		return fmt.Sprintf("delete %s:%s", s.repo, s.delete)
	}
	return fmt.Sprintf("copy %s %v", s.repo, s.copy)
}

func (p *pusher) job() Job {
	return Job{From: p.local, To: p.endpoint, Select: p.sel, Prefix: p.cfg.ToPrefix, Jobs: p.jobs()}
}

// step applies one step to the target.
func (p *pusher) step(ctx context.Context, s step) error {
	if s.copy == nil {
		return p.delete(ctx, s.repo, s.delete)
	}
	job := p.job()
	items, err := PlanRefs(ctx, job, s.repo, s.copy)
	if err != nil {
		return err
	}
	// What the source no longer has was deleted since: its own event
	// follows.
	kept := items[:0]
	for _, it := range items {
		if !IsNotFound(it.Err) {
			kept = append(kept, it)
		}
	}
	results := Apply(ctx, job, kept, quiet{})
	p.copied(results)
	return Failures(results)
}

// delete deletes ref (a tag or a digest) of repo on the target; what the
// target does not have counts as deleted, and a target that refuses
// deletes keeps it.
func (p *pusher) delete(ctx context.Context, repo, ref string) error {
	r, err := p.endpoint.Repo(TargetName(p.cfg.ToPrefix, repo))
	if err != nil {
		return err
	}
	err = remote.Delete(targetRef(r, ref), p.endpoint.options(ctx)...)
	var te *transport.Error
	switch {
	case notFound(err):
		return nil
	case errors.As(err, &te) && te.StatusCode == http.StatusMethodNotAllowed:
		// Retrying would hold the queue forever; what stays on the
		// target is not a loss.
		p.log.Warn().Str("ref", targetRef(r, ref).String()).Msg("the target refuses deletes (405): kept there; set deletes = false for this target")
		return nil
	}
	if err == nil {
		p.copied([]Result{{Status: Copied}})
	}
	return err
}

// syncAll copies every matching repository and tag the target lacks.
func (p *pusher) syncAll(ctx context.Context) error { return p.copyAll(ctx, p.job()) }
