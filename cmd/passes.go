package cmd

import (
	"context"
	"time"

	"github.com/nora-registry/nora/gc"
	"github.com/nora-registry/nora/retention"
	"github.com/nora-registry/nora/ui"
)

// Who started a GC or retention pass.
const (
	bySchedule  = "schedule"
	byCLI       = "cli"
	byDashboard = "dashboard"
)

// recordPass adds p to the store's record of passes, which the dashboard
// shows and which outlives the process.
func (m *maintenance) recordPass(p ui.Pass) {
	m.reclaim.stale.Store(true)
	if err := m.store.AppendPass(context.Background(), p); err != nil {
		m.log.Error().Err(err).Str("kind", p.Kind).Msg("recording the pass failed")
	}
}

func gcPass(by string, started time.Time, res gc.Result, err error) ui.Pass {
	p := ui.Pass{Kind: "gc", By: by, Started: started, Seconds: time.Since(started).Seconds(),
		Manifests: res.Manifests, Links: res.Links, Blobs: res.Blobs, Uploads: res.Uploads, Files: res.Files,
		Bytes: res.Bytes, Skipped: res.Skipped, Failed: res.Failed}
	if err != nil {
		p.Error = err.Error()
	}
	return p
}

func retentionPass(by string, started time.Time, res retention.Result, err error) ui.Pass {
	p := ui.Pass{Kind: "retention", By: by, Started: started, Seconds: time.Since(started).Seconds(),
		Tags: res.Tags, Manifests: res.Manifests, Skipped: res.Skipped}
	if err != nil {
		p.Error = err.Error()
	}
	return p
}

// dashboardMaintenance is the server's maintenance as the dashboard's GC
// page drives it: passes run under the server's context, so shutting
// down stops them, whatever became of the request that started them.
type dashboardMaintenance struct {
	ctx context.Context
	m   *maintenance
}

func (d dashboardMaintenance) RunGC() error {
	return d.m.gc(d.ctx, byDashboard, false, d.m.settings.Load().gc.DeleteUntagged, 0, quiet)
}

func (d dashboardMaintenance) ApplyRetention() error {
	return d.m.retention(d.ctx, byDashboard, false, quiet)
}

// RetentionPlan plans without waiting for a pass under way.
func (d dashboardMaintenance) RetentionPlan(ctx context.Context) ([]retention.Decision, error) {
	tags, err := retention.Collect(ctx, d.m.store, nil)
	if err != nil {
		return nil, err
	}
	return retention.Plan(time.Now(), tags, d.m.settings.Load().rules), nil
}

func (d dashboardMaintenance) HasRetention() bool { return d.m.settings.Load().hasRules }

func (d dashboardMaintenance) Passes() []ui.Pass {
	passes, err := d.m.store.ListPasses(d.ctx)
	if err != nil {
		d.m.log.Error().Err(err).Msg("reading the record of passes failed")
	}
	return passes
}

func (d dashboardMaintenance) Reclaimable() *ui.Reclaimable { return d.m.reclaimable(d.ctx) }

func (d dashboardMaintenance) NextRun() time.Time {
	if n := d.m.next.Load(); n > 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
