package cmd

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// report is where a GC or retention pass writes: its output, sizes in
// bytes when raw, and a progress line on live, a terminal, unless nil.
// all lists in a retention plan the tags no rule covers.
type report struct {
	out      io.Writer
	raw, all bool
	live     io.Writer
}

// cliReport is the report of a command: on its standard output, with a
// progress line there if that is a terminal.
func cliReport(cmd *cobra.Command, raw, all bool) report {
	rep := report{out: cmd.OutOrStdout(), raw: raw, all: all}
	if isTerminal(rep.out) {
		rep.live = rep.out
	}
	return rep
}

// query is rep as the admin socket's query parameters, which
// socketReport reads back.
func (rep report) query() string {
	return fmt.Sprintf("&bytes=%t&all=%t&progress=%t", rep.raw, rep.all, rep.live != nil)
}

// socketReport is the report of a pass asked for on the admin socket,
// streamed in the response w.
func socketReport(w http.ResponseWriter, r *http.Request) report {
	q := r.URL.Query()
	rep := report{out: w}
	rep.raw, _ = strconv.ParseBool(q.Get("bytes"))
	rep.all, _ = strconv.ParseBool(q.Get("all"))
	if live, _ := strconv.ParseBool(q.Get("progress")); live {
		rep.live = flushing{w}
	}
	return rep
}

// quiet is the report of passes nobody watches: the scheduler's and the
// dashboard's.
var quiet = report{out: io.Discard}

// Progress lines appear once a pass has run progressAfter, so a short
// pass prints only its result, and are redrawn every progressEvery.
const (
	progressAfter = 3 * time.Second
	progressEvery = time.Second
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// showProgress draws line() on w, in place, once after has passed and
// then every every, until stop, which erases it. Nothing is drawn when w
// is nil.
func showProgress(w io.Writer, line func() string, after, every time.Duration) (stop func()) {
	if w == nil {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTimer(after)
		defer t.Stop()
		drawn := false
		for {
			select {
			case <-done:
				if drawn {
					fmt.Fprint(w, "\r\x1b[K")
				}
				return
			case <-t.C:
			}
			fmt.Fprintf(w, "\r%s\x1b[K", line())
			drawn = true
			t.Reset(every)
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// flushing writes to an HTTP response and sends each write at once, so a
// progress line crosses the admin socket as it is drawn.
type flushing struct{ w http.ResponseWriter }

func (f flushing) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	http.NewResponseController(f.w).Flush()
	return n, err
}
