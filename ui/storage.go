package ui

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// StorageHistory is the store's totals per day, oldest first, and the chart of
// them the page draws.
type StorageHistory struct {
	Days  []storage.Usage `json:"days"`
	Chart chart           `json:"-"`
}

// The chart's size in SVG units; it scales to the page's width.
const (
	chartW, chartH = 600, 160
	defaultDays    = 90
	maxDays        = 730
)

// chart is a bar per day, drawn server-side as inline SVG.
type chart struct {
	W, H int
	Bars []bar
	Max  int64
}

type bar struct {
	X, Y, W, H float64
	Label      string
}

func newChart(days []storage.Usage) chart {
	c := chart{W: chartW, H: chartH}
	for _, d := range days {
		c.Max = max(c.Max, d.BlobBytes)
	}
	if len(days) == 0 {
		return c
	}
	scale := float64(chartH) / float64(max(c.Max, 1))
	step := float64(chartW) / float64(len(days))
	for i, d := range days {
		h := float64(d.BlobBytes) * scale
		c.Bars = append(c.Bars, bar{X: float64(i) * step, Y: chartH - h, W: max(step-1, 1), H: h, Label: d.Day + ": " + humanBytes(d.BlobBytes)})
	}
	return c
}

// seesEverything reports whether c may pull every repository: the
// store's totals tell of all of them.
func (h *Handler) seesEverything(ctx context.Context, c caller) error {
	if h.auth == nil || c.isAdmin() {
		return nil
	}
	s, err := h.stats.get(ctx)
	if err != nil {
		return err
	}
	for _, r := range s.repos {
		if !c.mayList(r.name) {
			if !c.loggedIn() {
				return apiError(registry.CodeUnauthorized, "authentication required")
			}
			return apiError(registry.CodeDenied, "storage over time counts every repository: it is shown to those who may pull them all")
		}
	}
	return nil
}

// history reads ?days= (1 to 730, 90 by default).
func (h *Handler) history(r *http.Request, c caller) (StorageHistory, error) {
	n := defaultDays
	if s := r.URL.Query().Get("days"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > maxDays {
			return StorageHistory{}, apiError(codeInvalid, "days must be a number from 1 to "+strconv.Itoa(maxDays))
		}
		n = v
	}
	if err := h.seesEverything(r.Context(), c); err != nil {
		return StorageHistory{}, err
	}
	days, err := h.store.UsageHistory(r.Context(), time.Now().UTC().AddDate(0, 0, 1-n))
	if err != nil {
		return StorageHistory{}, err
	}
	if days, err = h.withToday(r.Context(), days); err != nil {
		return StorageHistory{}, err
	}
	return StorageHistory{Days: days, Chart: newChart(days)}, nil
}

// withToday puts the overview's current count in place of today's
// recorded one, which is as old as the first count of the day.
func (h *Handler) withToday(ctx context.Context, days []storage.Usage) ([]storage.Usage, error) {
	s, err := h.stats.get(ctx)
	if err != nil {
		return nil, err
	}
	today := storage.Usage{Day: time.Now().UTC().Format(time.DateOnly), BlobBytes: s.total.BlobBytes, Blobs: s.total.Blobs, Repositories: s.total.Repositories}
	if n := len(days); n > 0 && days[n-1].Day == today.Day {
		days = days[:n-1]
	}
	return append(days, today), nil
}

func (h *Handler) storagePage(r *http.Request, c caller, v *view) (string, error) {
	hi, err := h.history(r, c)
	v.Title, v.Data = "Storage over time", hi
	return "storage", err
}

// GET /api/v1/storage/history?days=
func (h *Handler) apiStorageHistory(w http.ResponseWriter, r *http.Request, c caller) error {
	hi, err := h.history(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, hi)
	return nil
}
