package ui

import (
	"context"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/retention"
	"github.com/nora-registry/nora/storage"
)

// Maintenance is the server's GC and retention, as the admin page drives
// them: one pass at a time with the scheduled ones.
type Maintenance interface {
	// RunGC runs a GC pass and ApplyRetention applies the retention
	// plan, now, recorded among the passes.
	RunGC() error
	ApplyRetention() error
	// RetentionPlan is the plan `registry retention --dry-run` prints.
	RetentionPlan(ctx context.Context) ([]retention.Decision, error)
	HasRetention() bool
	// Passes returns the last passes, newest first.
	Passes() []Pass
	// NextRun is when the schedule runs retention then GC next; zero
	// without a schedule.
	NextRun() time.Time
	// Reclaimable is the last measure of what GC could free, nil if
	// none yet; asking may start a new measure in the background.
	Reclaimable() *Reclaimable
}

// Pass is one GC or retention pass and what it deleted.
type Pass = storage.Pass

// WithMaintenance shows the GC and retention page, driving m.
func WithMaintenance(m Maintenance) Option { return func(h *Handler) { h.maint = m } }

// maxPlanRows bounds the retention plan a page or API answer lists.
const maxPlanRows = 1000

// runWait is how long a request that starts a pass waits for its end
// before answering that it still runs.
const runWait = 10 * time.Second

// GCView is the GC and retention page, and GET /api/v1/maintenance.
type GCView struct {
	Passes []Pass `json:"passes"`
	// Retention is false without [[retention.rules]].
	Retention bool `json:"retention"`
	// Plan lists the decisions that delete or that a rule or protection
	// made (as --dry-run prints them), at most maxPlanRows.
	Plan      []PlanRow `json:"plan"`
	Deletes   int       `json:"deletes"`
	Truncated bool      `json:"truncated,omitempty"`
}

// PlanRow is one decision of the retention plan.
type PlanRow struct {
	Repository string        `json:"repository"`
	Tag        string        `json:"tag,omitempty"` // "" for an untagged manifest
	Digest     digest.Digest `json:"digest"`
	Pushed     time.Time     `json:"pushed"`
	Pulled     *time.Time    `json:"lastPulled,omitempty"`
	Delete     bool          `json:"delete"`
	Why        string        `json:"why"`
}

// maintAdmin checks an admin request about GC and retention.
func (h *Handler) maintAdmin(c caller) error {
	if err := c.mayAdmin(); err != nil {
		return err
	}
	if h.maint == nil {
		return apiError(registry.CodeUnsupported, "GC and retention are not run here")
	}
	return nil
}

func (h *Handler) gcView(ctx context.Context, c caller) (*GCView, error) {
	if err := h.maintAdmin(c); err != nil {
		return nil, err
	}
	v := &GCView{Passes: h.maint.Passes(), Retention: h.maint.HasRetention(), Plan: []PlanRow{}}
	if !v.Retention {
		return v, nil
	}
	plan, err := h.maint.RetentionPlan(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range plan {
		if d.Delete {
			v.Deletes++
		} else if d.Rule < 0 && d.Why != "protected" {
			continue
		}
		if len(v.Plan) == maxPlanRows {
			v.Truncated = true
			continue
		}
		row := PlanRow{Repository: d.Repo, Tag: d.Tag.Tag, Digest: d.Digest, Pushed: d.Pushed, Delete: d.Delete, Why: d.Why}
		if !d.Pulled.IsZero() {
			row.Pulled = &d.Pulled
		}
		v.Plan = append(v.Plan, row)
	}
	return v, nil
}

// run starts a GC ("gc") or retention ("retention") pass and waits
// runWait for it. It reports whether the pass ended.
func (h *Handler) run(kind string) (bool, error) {
	fn := h.maint.RunGC
	if kind == "retention" {
		fn = h.maint.ApplyRetention
	} else if kind != "gc" {
		return false, apiError(codeInvalid, "run gc or retention")
	}
	h.log.Info().Str("pass", kind).Msg("dashboard: pass started")
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return true, err
	case <-time.After(runWait):
		return false, nil
	}
}

// gcPage serves GET /ui/gc and POST /ui/gc (run=gc or run=retention).
func (h *Handler) gcPage(r *http.Request, c caller, v *view) (string, error) {
	v.Title = "Garbage collection and retention"
	if r.Method == http.MethodPost {
		if err := h.maintAdmin(c); err != nil {
			return "", err
		}
		r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			return "", apiError(codeInvalid, "invalid form")
		}
		if err := h.checkMutation(r, c, r.PostForm.Get("csrf")); err != nil {
			return "", err
		}
		ended, err := h.run(r.PostForm.Get("run"))
		if err != nil {
			return "", err
		}
		v.Redirect = "/ui/gc?ran=" + map[bool]string{true: "done", false: "running"}[ended]
		return "gc", nil
	}
	gv, err := h.gcView(r.Context(), c)
	if err != nil {
		return "", err
	}
	v.Data = gv
	switch r.URL.Query().Get("ran") {
	case "done":
		v.Notice = "The pass ended: see the first line below."
	case "running":
		v.Notice = "The pass still runs: it appears below when it ends."
	}
	return "gc", nil
}

// GET /api/v1/maintenance
func (h *Handler) apiMaintenance(w http.ResponseWriter, r *http.Request, c caller) error {
	gv, err := h.gcView(r.Context(), c)
	if err != nil {
		return err
	}
	writeJSON(w, gv)
	return nil
}

// RunResult answers a request to run a pass: the pass, once it ended,
// or running (202) if it did not end within runWait.
type RunResult struct {
	Running bool  `json:"running"`
	Pass    *Pass `json:"pass,omitempty"`
}

// POST /api/v1/maintenance/{kind}: kind gc or retention.
func (h *Handler) apiRun(w http.ResponseWriter, r *http.Request, c caller) error {
	if err := h.maintAdmin(c); err != nil {
		return err
	}
	if err := h.checkMutation(r, c, ""); err != nil {
		return err
	}
	ended, err := h.run(r.PathValue("kind"))
	if err != nil {
		return err
	}
	if !ended {
		writeJSONStatus(w, http.StatusAccepted, RunResult{Running: true})
		return nil
	}
	res := RunResult{}
	if p := h.maint.Passes(); len(p) > 0 {
		res.Pass = &p[0]
	}
	writeJSON(w, res)
	return nil
}
