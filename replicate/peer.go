package replicate

import (
	"context"
	"errors"
	"net/http"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
)

// peer is what a push target's worker and a pull source's poller
// share: the remote endpoint, paced and holding to Retry-After, the
// window, retries and the status.
type peer struct {
	cfg      Remote
	kind     string // "push" or "pull"
	endpoint Endpoint
	sel      *Selection
	window   Window
	ra       *retryAfter
	log      zerolog.Logger
	status   tracker
	metrics  *metrics
}

// Retry delays: the first retry comes quickly, since most failures are
// a remote restarting; a remote down for long is asked every 5 minutes.
var (
	retryMin = 500 * time.Millisecond
	retryMax = 5 * time.Minute
)

func newPeer(cfg Remote, kind string, log zerolog.Logger, m *metrics) (*peer, error) {
	sel, err := NewSelection(cfg.Repositories, cfg.Tags)
	if err != nil {
		return nil, err
	}
	w, err := ParseWindow(cfg.Window)
	if err != nil {
		return nil, err
	}
	rateCap, err := ParseRate(cfg.MaxRate)
	if err != nil {
		return nil, err
	}
	r := &peer{cfg: cfg, kind: kind, sel: sel, window: w, log: log.With().Str("remote", cfg.Name).Logger(), metrics: m}
	lim := newLimiter(rateCap)
	r.endpoint, err = cfg.endpoint(func(next http.RoundTripper) http.RoundTripper {
		if lim != nil {
			next = &limited{next: next, lim: lim}
		}
		r.ra = &retryAfter{next: next}
		return r.ra
	})
	if err != nil {
		return nil, err
	}
	r.status.st = RemoteStatus{Name: cfg.Name, Kind: kind, URL: cfg.URL}
	return r, nil
}

// jobs is how many blobs move at once.
func (r *peer) jobs() int {
	if r.cfg.Concurrency > 0 {
		return r.cfg.Concurrency
	}
	return DefaultConcurrency
}

// retry runs fn until it succeeds or ctx ends, each try inside the
// window, with backoff (at least the remote's Retry-After) between
// failures. It returns nil or ctx's error.
func (r *peer) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	b := Backoff{Min: retryMin, Max: retryMax}
	for {
		if err := r.window.Wait(ctx); err != nil {
			return err
		}
		r.status.update(func(s *RemoteStatus) { s.LastRun = time.Now() })
		err := fn(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			r.status.update(func(s *RemoteStatus) { s.LastSuccess, s.LastError = time.Now(), "" })
			return nil
		}
		r.metrics.failure(r.cfg.Name)
		d := max(b.Next(), time.Until(r.ra.notBefore()))
		r.status.update(func(s *RemoteStatus) { s.LastError, s.LastErrorAt = oneLine(err), time.Now() })
		r.log.Warn().Err(err).Str("what", what).Int64("retry_in_ms", d.Milliseconds()).Msg("replication failed")
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// sleep waits d, or returns ctx's error when it ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// copyAll copies everything job selects that its target lacks.
func (r *peer) copyAll(ctx context.Context, job Job) error {
	items, err := Plan(ctx, job)
	if errors.Is(err, ErrNoRepository) {
		return nil
	} else if err != nil {
		return err
	}
	results := Apply(ctx, job, items, quiet{})
	r.copied(results)
	return Failures(results)
}

// copied counts what a copy moved.
func (r *peer) copied(results []Result) {
	for _, res := range results {
		if res.Status != Copied {
			continue
		}
		r.metrics.copied(r.cfg.Name, res.Bytes)
		r.status.update(func(s *RemoteStatus) { s.Items++; s.Bytes += res.Bytes })
	}
}

// quiet is an Observer that shows nothing.
type quiet struct{}

func (quiet) Blob(*Item, v1.Descriptor) Transfer { return quiet{} }
func (quiet) Done(Result)                        {}
func (quiet) Add(int)                            {}
func (quiet) End(error)                          {}
