package cmd

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nora-registry/nora/gc"
	"github.com/nora-registry/nora/ui"
)

// reclaimMaxAge is how old the dashboard's measure of what GC could free
// may grow before the next look at it measures again. A pass, or a
// change of settings, makes it stale at once.
const reclaimMaxAge = time.Hour

// reclaimPace is the share of time a measure may work when gc.pace sets
// none: it reads every repository's metadata, and serving comes first.
const reclaimPace = 0.5

// reclaimMeter holds the last measure of what GC could free. It measures
// only when the dashboard asks, so a server nobody looks at pays nothing.
type reclaimMeter struct {
	last    atomic.Pointer[ui.Reclaimable]
	stale   atomic.Bool
	running atomic.Bool
}

// reclaimable returns the last measure, and starts a new one under ctx
// if there is none, it is stale, or older than reclaimMaxAge.
func (m *maintenance) reclaimable(ctx context.Context) *ui.Reclaimable {
	r := m.reclaim.last.Load()
	if r != nil && !m.reclaim.stale.Load() && time.Since(r.MeasuredAt) < reclaimMaxAge {
		return r
	}
	if m.reclaim.running.CompareAndSwap(false, true) {
		m.reclaim.stale.Store(false)
		go func() {
			defer m.reclaim.running.Store(false)
			if err := m.measureReclaim(ctx); err != nil && ctx.Err() == nil {
				m.log.Error().Err(err).Msg("gc: measuring what a pass could free failed")
			}
		}()
	}
	return r
}

// measureReclaim plans a GC pass with the server's settings and keeps
// what it would free. A plan deletes nothing and reads in short
// transactions, so it runs beside passes and requests.
func (m *maintenance) measureReclaim(ctx context.Context) error {
	opts := m.settings.Load().gc.Options()
	if opts.Pace <= 0 || opts.Pace >= 1 {
		opts.Pace = reclaimPace
	}
	p, err := gc.Plan(ctx, m.store, opts)
	if err != nil {
		return err
	}
	m.reclaim.last.Store(&ui.Reclaimable{Bytes: p.Bytes, WaitingBytes: p.WaitingBytes,
		CollectableBy: p.Now.Add(opts.Grace), MeasuredAt: p.Now})
	return nil
}
