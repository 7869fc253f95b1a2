package replicate

import (
	"context"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// puller copies one pull source's matching repositories into this
// registry every interval. Deletes at the source are not replicated.
type puller struct {
	*peer
	local     Endpoint
	newest    int
	platforms []v1.Platform
	interval  time.Duration
}

// run polls until ctx ends. A failed poll is retried with backoff; the
// next poll comes an interval after the last one ended.
func (p *puller) run(ctx context.Context) {
	for {
		if p.retry(ctx, "poll", p.poll) != nil {
			return
		}
		if sleep(ctx, p.interval) != nil {
			return
		}
	}
}

// poll copies what the source has and this registry lacks.
func (p *puller) poll(ctx context.Context) error {
	sel, err := NewSelection(p.cfg.Repositories, p.cfg.Tags)
	if err != nil {
		return err
	}
	job := Job{From: p.endpoint, To: p.local, Select: sel.Newest(p.newest), Prefix: p.cfg.ToPrefix, Jobs: p.jobs(), Platforms: p.platforms}
	return p.copyAll(ctx, job)
}
