package replicate

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// CanDraw reports whether w is a terminal that bars can be drawn on: one
// whose width is known.
func CanDraw(w io.Writer) bool {
	cw := cupwriter.New(w, false)
	if !cw.IsTerminal() {
		return false
	}
	width, _, err := cw.GetTermSize()
	return err == nil && width > 0
}

// Bars shows a copy on a terminal: one bar per blob in flight and one
// for the whole run, sized by the plan.
type Bars struct {
	p     *mpb.Progress
	total *mpb.Bar
}

// NewBars draws on w, a terminal, for a copy of total bytes.
func NewBars(w io.Writer, total int64) *Bars {
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(32))
	bar := p.AddBar(total,
		mpb.PrependDecorators(decor.Name("total", decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
	)
	return &Bars{p: p, total: bar}
}

// Blob implements Observer.
func (b *Bars) Blob(it *Item, d v1.Descriptor) Transfer {
	label := fmt.Sprintf("%s %s", it.Target, d.Digest.Hex[:12])
	bar := b.p.AddBar(d.Size,
		mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")),
	)
	return &barTransfer{bar: bar, total: b.total, size: d.Size}
}

// Done implements Observer.
func (b *Bars) Done(Result) {}

// Wait completes the bars and waits for their last drawing.
func (b *Bars) Wait() {
	b.total.SetTotal(-1, true)
	b.p.Wait()
}

type barTransfer struct {
	bar, total *mpb.Bar
	size       int64
	sent       atomic.Int64
}

func (t *barTransfer) Add(n int) {
	t.sent.Add(int64(n))
	t.bar.IncrBy(n)
	t.total.IncrBy(n)
}

// End completes the bar; a blob mounted or already there counts in the
// total as done without bytes of its own.
func (t *barTransfer) End(err error) {
	if rest := t.size - t.sent.Load(); rest > 0 {
		t.total.IncrInt64(rest)
	}
	if err != nil {
		t.bar.Abort(true)
		return
	}
	t.bar.SetTotal(-1, true)
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
func (l *Lines) Done(r Result) {
	if r.Err != nil {
		l.printf("%s -> %s: %s: %s\n", itemName(r.Item), r.Item.Target, r.Status, oneLine(r.Err))
		return
	}
	l.printf("%s -> %s: %s, %d bytes\n", itemName(r.Item), r.Item.Target, r.Status, r.Bytes)
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
