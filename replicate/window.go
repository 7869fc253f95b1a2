package replicate

import (
	"context"
	"fmt"
	"time"
)

// Window is a daily span of local time when copies run. The zero Window
// is always open.
type Window struct {
	from, to time.Duration // since midnight; from == to means always
}

// ParseWindow reads "HH:MM-HH:MM" in local time. A window may span
// midnight ("22:00-06:00"); "" is always open.
func ParseWindow(s string) (Window, error) {
	if s == "" {
		return Window{}, nil
	}
	var h1, m1, h2, m2 int
	var rest string
	n, _ := fmt.Sscanf(s, "%d:%d-%d:%d%s", &h1, &m1, &h2, &m2, &rest)
	if n != 4 || len(s) != len("00:00-00:00") || !clock(h1, m1) || !clock(h2, m2) {
		return Window{}, fmt.Errorf("%q is not a window (want \"HH:MM-HH:MM\" in local time, e.g. \"01:00-05:00\")", s)
	}
	w := Window{from: time.Duration(h1)*time.Hour + time.Duration(m1)*time.Minute, to: time.Duration(h2)*time.Hour + time.Duration(m2)*time.Minute}
	if w.from == w.to {
		return Window{}, fmt.Errorf("%q is empty: start and end are the same time", s)
	}
	return w, nil
}

func clock(h, m int) bool { return h >= 0 && h < 24 && m >= 0 && m < 60 }

// Until returns how long after t the window opens: 0 when it is open.
func (w Window) Until(t time.Time) time.Duration {
	if w.from == w.to {
		return 0
	}
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	now := t.Sub(midnight)
	open := now >= w.from && now < w.to
	if w.from > w.to { // spans midnight
		open = now >= w.from || now < w.to
	}
	if open {
		return 0
	}
	next := midnight.Add(w.from)
	if !next.After(t) {
		next = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location()).Add(w.from)
	}
	return next.Sub(t)
}

// Wait returns when the window is open, or with ctx's error.
func (w Window) Wait(ctx context.Context) error {
	for d := w.Until(time.Now()); d > 0; d = w.Until(time.Now()) {
		// Look again at least every minute: the wall clock may jump.
		if err := sleep(ctx, min(d, time.Minute)); err != nil {
			return err
		}
	}
	return ctx.Err()
}
