//go:build bench && linux

package main

// Benchmarks of the real binary: `make bench` builds `registry` the way
// `make build` does, runs it on a fresh data directory and prints one
// report table. Each figure sits next to a ceiling measured on the same
// machine in the same run (a bare net/http handler in this test process
// doing only the unavoidable work) and next to the project's target. The
// load client shares the machine with the server, as it does with the
// ceiling, so the ratio is the figure to read; absolute numbers move with
// the hardware. A missed target is reported, never failed: benchmarks
// measure, tests assert.
//
// The files: bench_test.go (the run and the report), bench_proc_test.go
// (building, starting and watching the server process), bench_blob_test.go
// (large blobs, streamed from a generator), bench_api_test.go (images,
// manifests, tags), bench_ceiling_test.go (the bare handler),
// bench_mirror_test.go (the pull-through cache), bench_startup_test.go
// (process start to first 200, empty and with 20,000 repositories).

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// TestBench runs every measurement against one registry process and prints
// the report. It takes about ten minutes and writes several GiB to the
// temporary directory, all removed at the end.
func TestBench(t *testing.T) {
	settleDeletions(t) // the small images create files fastest
	b := newBenchRun(t)

	b.mainDir = b.dataDir("main")
	srv := b.startProc(b.mainDir)
	// The first answer can come while start-up still holds what it ran
	// (the server lets go of its binary's pages 1-2 ms after it starts to
	// listen, and the probe asks every millisecond): measured there, the
	// same binary read 9.4-18.5 MB. Idle is once that has run.
	first := srv.rss()
	time.Sleep(500 * time.Millisecond)
	idle := srv.rss()
	for _, ph := range []struct {
		name string
		run  func(*benchProc)
	}{
		{"blobs", b.blobPhase},
		{"small", b.smallImagesPhase},
		{"get", b.manifestGetPhase},
		{"wrk", b.wrkPhase},
		{"tags", b.tagsPhase},
		{"uploads", b.concurrentUploadsPhase},
	} {
		if benchPhase(ph.name) {
			ph.run(srv)
		}
	}
	time.Sleep(5 * time.Second) // let the GC and the scavenger settle
	settled, settledFile := srv.rss(), srv.status("RssFile")
	b.rep.section("idle memory")
	b.rep.add("RSS on the first answer", float64(first), 0, fmtMB, "", false)
	b.memRow("idle RSS after start, 0.5 s later", idle, 15<<20)
	b.memRow("idle RSS after the workload, 5 s later", settled, 15<<20)
	b.rep.add("  of which file-backed (binary, bbolt mmap)", float64(settledFile), 0, fmtMB, "", false)
	srv.stop()

	b.printReport()
}

// benchPhase reports whether the phase called name runs:
// NORA_BENCH_PHASES, a comma-separated list of blobs, small, get, wrk,
// tags and uploads, picks some (get needs small); unset, all run.
func benchPhase(name string) bool {
	only := os.Getenv("NORA_BENCH_PHASES")
	return only == "" || slices.Contains(strings.Split(only, ","), name)
}

// benchRun holds what every phase shares: the temporary directory, the
// binary, one keep-alive HTTP client, the ceiling and the report.
type benchRun struct {
	t       *testing.T
	dir     string
	mainDir string // the data directory of the main registry process
	bin     string
	hc      *benchHTTP
	ceil    *benchCeilingProc
	rep     benchReport
	start   time.Time // when the run began, for the report's total
}

// printReport prints the report with the time the run took.
func (b *benchRun) printReport() { b.rep.print(os.Stdout, time.Since(b.start)) }

// newBenchRun builds the binary and measures the ceiling. The bench
// builds only on Linux: it reads /proc/PID/status and the disk's counters.
func newBenchRun(t *testing.T) *benchRun {
	markDeletions(t)
	dir := t.TempDir()
	b := &benchRun{t: t, dir: dir, hc: newBenchHTTP(), start: time.Now()}
	b.bin = b.build()
	b.ceil = newBenchCeiling(t, b.dataDir("ceiling"))
	return b
}

// dataDir returns a fresh directory under the run's temporary directory.
func (b *benchRun) dataDir(name string) string {
	d, err := os.MkdirTemp(b.dir, name+"-")
	if err != nil {
		b.t.Fatal(err)
	}
	return d
}

// benchReport is the table printed at the end, in the order rows were
// added.
type benchReport struct {
	mu   sync.Mutex
	rows [][6]string
}

// add appends a row. ceil is 0 when the figure has no ceiling; target is
// "" when it has none, and then ok is ignored.
func (r *benchReport) add(name string, v, ceil float64, format func(float64) string, target string, ok bool) {
	row := [6]string{name, format(v), "-", "-", target, ""}
	if ceil > 0 {
		row[2] = format(ceil)
		row[3] = fmt.Sprintf("%.2f×", v/ceil)
	}
	if target != "" {
		row[5] = map[bool]string{true: "PASS", false: "MISS"}[ok]
	}
	r.mu.Lock()
	r.rows = append(r.rows, row)
	r.mu.Unlock()
}

// text adds a row of figures that have no ratio, such as shares.
func (r *benchReport) text(name, value, ceil string) {
	r.mu.Lock()
	r.rows = append(r.rows, [6]string{name, value, ceil, "-", "", ""})
	r.mu.Unlock()
}

// section adds a heading row.
func (r *benchReport) section(title string) {
	r.mu.Lock()
	r.rows = append(r.rows, [6]string{"\x00" + title})
	r.mu.Unlock()
}

func (r *benchReport) print(w io.Writer, took time.Duration) {
	fmt.Fprintf(w, "\nnora benchmark report (%s, %d CPUs, %s, took %s)\n\n",
		runtime.Version(), runtime.NumCPU(), runtime.GOARCH, took.Round(time.Second))
	header := [6]string{"figure", "value", "ceiling", "value/ceiling", "target", "result"}
	var width [6]int
	for _, row := range append(r.rows, header) {
		if strings.HasPrefix(row[0], "\x00") {
			continue // headings do not widen the first column
		}
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range append([][6]string{header}, r.rows...) {
		if title, ok := strings.CutPrefix(row[0], "\x00"); ok {
			fmt.Fprintln(w, "— "+title)
			continue
		}
		var line strings.Builder
		for i, cell := range row {
			line.WriteString(cell)
			line.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell)+2))
		}
		fmt.Fprintln(w, strings.TrimRight(line.String(), " "))
	}
	fmt.Fprintln(w)
}

// Row helpers, one per kind of figure.

func (b *benchRun) throughputRow(name string, bytesPerSec, ceil float64) {
	ok := ceil > 0 && bytesPerSec >= 0.95*ceil
	b.rep.add(name, bytesPerSec, ceil, fmtMBps, "≥ 95% of ceiling", ok)
}

func (b *benchRun) memRow(name string, bytes int64, limit int64) {
	b.rep.add(name, float64(bytes), 0, fmtMB, "≤ "+fmtMB(float64(limit)), bytes <= limit)
}

func (b *benchRun) durRow(name string, d, ceil time.Duration, limit time.Duration) {
	target := ""
	if limit > 0 {
		target = "≤ " + fmtDur(float64(limit))
	}
	b.rep.add(name, float64(d), float64(ceil), fmtDur, target, d <= limit)
}

// ratioRow adds a duration whose target is at most limit times the
// ceiling's, measured in the same run.
func (b *benchRun) ratioRow(name string, d, ceil time.Duration, limit float64) {
	b.rep.add(name, float64(d), float64(ceil), fmtDur, fmt.Sprintf("≤ %.2f× ceiling", limit), float64(d) <= limit*float64(ceil))
}

func fmtMBps(v float64) string { return fmt.Sprintf("%.0f MB/s", v/1e6) }
func fmtMB(v float64) string   { return fmt.Sprintf("%.1f MB", v/(1<<20)) }
func fmtRate(v float64) string { return fmt.Sprintf("%.0f/s", v) }

// fmtMicros formats nanoseconds as microseconds.
func fmtMicros(v float64) string { return fmt.Sprintf("%.1fµs", v/1e3) }

func fmtDur(v float64) string {
	d := time.Duration(v)
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", v/1e6)
	default:
		return fmt.Sprintf("%.2fms", v/1e6)
	}
}

// benchParallel runs fn(i) for i in [0, n) on workers goroutines and
// returns the first error.
func benchParallel(workers, n int, fn func(worker, i int) error) error {
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := fn(w, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

// benchMedian returns the median of ds, which it sorts.
func benchMedian(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// benchPercentile returns the p-th percentile (0..100) of sorted ds by the
// nearest-rank method.
func benchPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
