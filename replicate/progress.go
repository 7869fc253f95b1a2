package replicate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/term"
)

// CanDraw reports whether w is a terminal a progress line can be drawn
// on: one whose width is known.
func CanDraw(w io.Writer) bool { return termWidth(w) > 0 }

// termWidth returns the width of terminal w, or 0 if w is no terminal or
// its width is unknown.
func termWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}

// Bars shows a copy on a terminal: a line per image as it ends, under
// which one line, redrawn in place, tells the bytes copied of the plan's
// total, the rate, and the blobs in flight.
type Bars struct {
	w        io.Writer
	total    int64
	start    time.Time
	done     atomic.Int64 // bytes sent, or counted as done (mounted, already there)
	inFlight atomic.Int64

	mu       sync.Mutex // the terminal
	drawn    bool
	stop     chan struct{}
	finished chan struct{}
}

// barsEvery is how often the progress line is redrawn.
const barsEvery = 250 * time.Millisecond

// NewBars draws on w, a terminal, for a copy of total bytes.
func NewBars(w io.Writer, total int64) *Bars {
	b := &Bars{w: w, total: total, start: time.Now(), stop: make(chan struct{}), finished: make(chan struct{})}
	go b.run()
	return b
}

func (b *Bars) run() {
	defer close(b.finished)
	t := time.NewTicker(barsEvery)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.mu.Lock()
			b.draw()
			b.mu.Unlock()
		}
	}
}

// line is the progress line: "12.0 MiB / 40.0 MiB  30%  4.0 MiB/s  2 blobs in flight".
func (b *Bars) line() string {
	done := b.done.Load()
	pct := 100
	if b.total > 0 {
		pct = int(min(done, b.total) * 100 / b.total)
	}
	rate := float64(done) / max(time.Since(b.start).Seconds(), 0.001)
	l := fmt.Sprintf("%s / %s  %3d%%  %s/s", humanize.IBytes(uint64(done)), humanize.IBytes(uint64(b.total)), pct, humanize.IBytes(uint64(rate)))
	if n := b.inFlight.Load(); n > 0 {
		l += fmt.Sprintf("  %d blob%s in flight", n, plural(n))
	}
	return l
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// draw redraws the progress line, cut to the terminal's width so that it
// never wraps; b.mu is held.
func (b *Bars) draw() {
	l := b.line()
	if width := termWidth(b.w); width > 1 && len(l) >= width {
		l = l[:width-1]
	}
	fmt.Fprintf(b.w, "\r%s\x1b[K", l)
	b.drawn = true
}

// Blob implements Observer.
func (b *Bars) Blob(_ *Item, d v1.Descriptor) Transfer {
	b.inFlight.Add(1)
	return &barTransfer{b: b, size: d.Size}
}

// Done implements Observer: the image's line goes above the progress line.
func (b *Bars) Done(r Result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
	}
	fmt.Fprintln(b.w, resultLine(r))
	b.draw()
}

// Wait stops redrawing and leaves the final progress line.
func (b *Bars) Wait() {
	close(b.stop)
	<-b.finished
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw()
	fmt.Fprintln(b.w)
}

type barTransfer struct {
	b    *Bars
	size int64
	sent atomic.Int64
}

func (t *barTransfer) Add(n int) {
	t.sent.Add(int64(n))
	t.b.done.Add(int64(n))
}

// End counts a blob mounted or already there in the total as done
// without bytes of its own; what a failed blob sent stays counted (a
// retry may send it again, past the total), its rest does not.
func (t *barTransfer) End(err error) {
	if rest := t.size - t.sent.Load(); rest > 0 && err == nil {
		t.b.done.Add(rest)
	}
	t.b.inFlight.Add(-1)
}

// Lines tells a copy as plain log lines, for output that is not a
// terminal.
type Lines struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLines writes to w.
func NewLines(w io.Writer) *Lines { return &Lines{w: w} }

func (l *Lines) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

// Blob implements Observer.
func (l *Lines) Blob(it *Item, d v1.Descriptor) Transfer {
	return &lineTransfer{l: l, name: itemName(it), d: d}
}

// Done implements Observer.
func (l *Lines) Done(r Result) { l.printf("%s\n", resultLine(r)) }

// resultLine tells how one image's copy ended.
func resultLine(r Result) string {
	if r.Err != nil {
		return fmt.Sprintf("%s -> %s: %s: %s", itemName(r.Item), r.Item.Target, r.Status, oneLine(r.Err))
	}
	return fmt.Sprintf("%s -> %s: %s, %d bytes", itemName(r.Item), r.Item.Target, r.Status, r.Bytes)
}

type lineTransfer struct {
	l    *Lines
	name string
	d    v1.Descriptor
	sent atomic.Int64
}

func (t *lineTransfer) Add(n int) { t.sent.Add(int64(n)) }

func (t *lineTransfer) End(err error) {
	switch {
	case errors.Is(err, ErrStopped):
		t.l.printf("%s: blob %s: %s\n", t.name, t.d.Digest, err)
	case err != nil:
		t.l.printf("%s: blob %s: failed: %s\n", t.name, t.d.Digest, oneLine(err))
	case t.sent.Load() == 0:
		t.l.printf("%s: blob %s: mounted or already there\n", t.name, t.d.Digest)
	default:
		t.l.printf("%s: blob %s: sent %d bytes\n", t.name, t.d.Digest, t.sent.Load())
	}
}
