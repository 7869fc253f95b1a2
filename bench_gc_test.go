//go:build bench && linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nora-registry/nora/auth"
)

// TestBenchGC measures what garbage collection costs a steady workload:
// it fills a registry with NORA_BENCH_GC_IMAGES small images (default
// 10,000; the fill stops after 5 minutes, and the report says so), then
// runs 4 clients that each push a new 1 KiB image and pull a random one
// of the fill, in rounds that alternate between no GC and a GC pass
// started every NORA_BENCH_GC_INTERVAL (default 1s, as [gc] interval =
// "1s" would; 0 runs them back to back) through the admin socket, the
// path `registry gc` takes while a server holds the data directory. A
// pass longer than the interval is followed at once by the next, as the
// scheduler's ticker does. The "ceiling" column of this
// report is the same workload without GC, so value/ceiling is the cost of
// GC; the target is 1.2×.
func TestBenchGC(t *testing.T) {
	b := newBenchRun(t)
	dir := b.dataDir("gc")
	srv := b.startGCProc(dir)
	b.gcLoadPhase(srv, filepath.Join(dir, "data", auth.AdminSocket))
	srv.stop()
	b.printReport()
}

// benchGCTOML is the [gc] section of the GC benchmark's server: no
// scheduler (the benchmark runs the passes), and a grace period short
// enough that the images the workload untags are deleted while it runs.
const benchGCTOML = `
[gc]
interval = "0"
grace = "5s"
delete_untagged = true
`

// startGCProc starts the binary as startProc does, with benchGCTOML added
// to the configuration.
func (b *benchRun) startGCProc(dataDir string) *benchProc {
	storage := fmt.Sprintf("[storage]\ndriver = \"filesystem\"\nroot = %q\n", filepath.Join(dataDir, "data"))
	return b.startProcWith(dataDir, storage+benchGCTOML)
}

// gcLoadPhase fills the registry, then measures the workload without and
// with GC.
func (b *benchRun) gcLoadPhase(srv *benchProc, socket string) {
	const (
		clients, rounds, round = 4, 2, 10 * time.Second
		fillClients, fillLimit = 8, 5 * time.Minute
		layerSize              = 1024
	)
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("NORA_BENCH_GC_IMAGES")); err == nil && v > 0 {
		n = v
	}
	interval := time.Second
	if v, err := time.ParseDuration(os.Getenv("NORA_BENCH_GC_INTERVAL")); err == nil && v >= 0 {
		interval = v
	}
	every := "back to back"
	if interval > 0 {
		every = "started every " + interval.String()
	}

	// The fill: image i is bench/gc-<i%100>:v<i>. newBenchImage has 65,536
	// seeds; the fill uses the first n, the workload those after 40,000.
	n = min(n, 40000)
	var filled atomic.Int64
	errStop := errors.New("fill limit reached")
	t0 := time.Now()
	err := benchParallel(fillClients, n, func(_, i int) error {
		if time.Since(t0) > fillLimit {
			return errStop
		}
		img := newBenchImage(uint64(i), layerSize)
		repo := fmt.Sprintf("bench/gc-%02d", i%100)
		if err := b.pushBlobs(srv.base, repo, img); err != nil {
			return err
		}
		if err := b.putManifest(srv.base, repo, fmt.Sprintf("v%d", i), img.manifest); err != nil {
			return err
		}
		filled.Add(1)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		b.t.Fatalf("fill: %v", err)
	}
	fillTook := time.Since(t0)
	// benchParallel hands out indexes in order, so the images filled are
	// nearly all of the first ones; pulls draw from those that succeeded.
	have := int(filled.Load())
	note := ""
	if have < n {
		note = fmt.Sprintf(" (of %d asked: the fill stopped at its %s limit)", n, fillLimit)
		n = have
	}
	b.rep.section(fmt.Sprintf("GC under load: %d small images%s, then %d clients each pushing a new %d-byte image and pulling one, %d rounds of %s without GC and with GC passes %s at the default gc.pace, one after another (ceiling column: the same workload without GC)",
		n, note, clients, layerSize, rounds, round, every))
	b.rep.add(fmt.Sprintf("fill %d images, %d clients", n, fillClients), float64(n)/fillTook.Seconds(), 0, fmtRate, "", false)

	var seed atomic.Uint64
	seed.Store(40000)
	var push, pull [2][]time.Duration // 0 without GC, 1 with
	var took [2]time.Duration
	var passes []time.Duration
	rss := int64(0)
	for r := range rounds {
		for k := range 2 {
			withGC := (r+k)%2 == 1
			var stopGC func() []time.Duration
			var stopRSS func() (int64, int64)
			if withGC {
				stopRSS = srv.watchRSS()
				stopGC = b.gcLoop(socket, interval)
			}
			t0 := time.Now()
			ps, ls, err := b.steadyLoad(srv.base, clients, round, n, &seed)
			if err != nil {
				b.t.Fatalf("steady workload (GC %t): %v", withGC, err)
			}
			w := map[bool]int{false: 0, true: 1}[withGC]
			took[w] += time.Since(t0)
			push[w] = append(push[w], ps...)
			pull[w] = append(pull[w], ls...)
			if withGC {
				passes = append(passes, stopGC()...)
				sampled, hwm := stopRSS()
				rss = max(rss, sampled, hwm)
			}
		}
	}
	for w := range 2 {
		slices.Sort(push[w])
		slices.Sort(pull[w])
	}
	rate := func(lat []time.Duration, w int) float64 { return float64(len(lat)) / took[w].Seconds() }
	const target = "≤ 1.20× without GC"
	latRow := func(name string, lat [2][]time.Duration, p float64) {
		with, without := benchPercentile(lat[1], p), benchPercentile(lat[0], p)
		b.rep.add(name, float64(with), float64(without), fmtDur, target, float64(with) <= 1.2*float64(without))
	}
	b.rep.add("image push (2 blob POSTs + manifest PUT) with GC", rate(push[1], 1), rate(push[0], 0), fmtRate, "", false)
	latRow("  p50 latency", push, 50)
	latRow("  p99 latency", push, 99)
	b.rep.add("image pull (manifest GET + 2 blob GETs) with GC", rate(pull[1], 1), rate(pull[0], 0), fmtRate, "", false)
	latRow("  p50 latency", pull, 50)
	latRow("  p99 latency", pull, 99)
	b.rep.add("GC passes completed under load", float64(len(passes)), 0, func(v float64) string { return fmt.Sprintf("%.0f", v) }, "", false)
	if len(passes) > 0 {
		b.durRow("  GC pass, median (admin socket round trip)", benchMedian(passes), 0, 0)
	}
	b.rep.add("peak server RSS with GC", float64(rss), 0, fmtMB, "", false)
}

// steadyLoad runs clients goroutines for dur; each pushes a new image to
// its own repository's tag latest, untagging its previous one, then pulls
// image rand(n) of the fill. It returns every push's and pull's latency.
func (b *benchRun) steadyLoad(base string, clients int, dur time.Duration, n int, seed *atomic.Uint64) (push, pull []time.Duration, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(dur)
	for c := range clients {
		wg.Go(func() {
			var ps, ls []time.Duration
			var e error
			repo := fmt.Sprintf("bench/steady-%d", c)
			for time.Now().Before(end) && e == nil {
				s := seed.Add(1)
				if s >= 1<<16 {
					e = errors.New("newBenchImage ran out of seeds")
					break
				}
				img := newBenchImage(s, 1024)
				t0 := time.Now()
				if e = b.pushBlobs(base, repo, img); e == nil {
					e = b.putManifest(base, repo, "latest", img.manifest)
				}
				ps = append(ps, time.Since(t0))
				if e != nil {
					break
				}
				i := rand.IntN(n)
				t0 = time.Now()
				e = b.pullImage(base, fmt.Sprintf("bench/gc-%02d", i%100), fmt.Sprintf("v%d", i))
				ls = append(ls, time.Since(t0))
			}
			mu.Lock()
			push, pull = append(push, ps...), append(pull, ls...)
			if err == nil {
				err = e
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return push, pull, err
}

// pullImage GETs repo:tag's manifest, then its config and layer, found by
// their digests in the manifest.
func (b *benchRun) pullImage(base, repo, tag string) error {
	hdr := http.Header{"Accept": {benchManifestType}}
	_, body, err := b.hc.do(http.MethodGet, base+"/v2/"+repo+"/manifests/"+tag, hdr, nil, 0, http.StatusOK)
	if err != nil {
		return err
	}
	for _, part := range strings.Split(string(body), `"digest":"`)[1:] {
		d, _, _ := strings.Cut(part, `"`)
		if _, _, err := b.hc.do(http.MethodGet, base+"/v2/"+repo+"/blobs/"+d, nil, nil, 0, http.StatusOK); err != nil {
			return err
		}
	}
	return nil
}

// gcLoop starts a GC pass over the admin socket at path every interval,
// or at once when the previous pass took longer, until the returned
// function is called; that returns each pass's duration. A failed pass
// fails the benchmark.
func (b *benchRun) gcLoop(path string, interval time.Duration) (stop func() []time.Duration) {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []time.Duration)
	go func() {
		var passes []time.Duration
		defer func() { done <- passes }()
		for ctx.Err() == nil {
			t0 := time.Now()
			req, _ := http.NewRequest(http.MethodPost, "http://nora/gc?delete_untagged=true", nil)
			resp, err := hc.Do(req)
			if err != nil {
				b.t.Errorf("POST /gc on %s: %v", path, err)
				return
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || strings.Contains(string(out), "\nerror: ") {
				b.t.Errorf("POST /gc = %s: %s", resp.Status, out)
				return
			}
			passes = append(passes, time.Since(t0))
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(t0.Add(interval))):
			}
		}
	}()
	return func() []time.Duration {
		cancel()
		return <-done
	}
}
