package cmd

import (
	"context"
	"io"
	"sync"
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

// keptPasses is how many passes the server remembers for the dashboard.
const keptPasses = 20

// passLog remembers the last passes in memory, newest last.
type passLog struct {
	mu     sync.Mutex
	passes []ui.Pass
}

func (l *passLog) add(p ui.Pass) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.passes) == keptPasses {
		l.passes = append(l.passes[:0], l.passes[1:]...)
	}
	l.passes = append(l.passes, p)
}

// list returns the passes, newest first.
func (l *passLog) list() []ui.Pass {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ui.Pass, len(l.passes))
	for i, p := range l.passes {
		out[len(out)-1-i] = p
	}
	return out
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
	return d.m.gc(d.ctx, byDashboard, false, d.m.settings.Load().gc.DeleteUntagged, 0, io.Discard)
}

func (d dashboardMaintenance) ApplyRetention() error {
	return d.m.retention(d.ctx, byDashboard, false, io.Discard)
}

// RetentionPlan plans without waiting for a pass under way.
func (d dashboardMaintenance) RetentionPlan(ctx context.Context) ([]retention.Decision, error) {
	tags, err := retention.Collect(ctx, d.m.store)
	if err != nil {
		return nil, err
	}
	return retention.Plan(time.Now(), tags, d.m.settings.Load().rules), nil
}

func (d dashboardMaintenance) HasRetention() bool { return d.m.settings.Load().hasRules }

func (d dashboardMaintenance) Passes() []ui.Pass { return d.m.passes.list() }

func (d dashboardMaintenance) NextRun() time.Time {
	if n := d.m.next.Load(); n > 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
