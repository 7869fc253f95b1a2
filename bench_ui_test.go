//go:build bench && linux

package main

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestBenchDashboard measures manifest GETs by tag from a few keep-alive
// clients while a browser-like poller loads the dashboard's overview page
// and its JSON every 500 ms, against the same load without it (the
// ceiling), in alternating rounds, over 1,000 repositories.
func TestBenchDashboard(t *testing.T) {
	const clients, rounds, round = 4, 4, 1500 * time.Millisecond
	b := newBenchRun(t)
	srv := b.startProc(b.dataDir("dashboard"))
	img := newMirrorImage(8000, 4096)
	for i := range 1000 {
		if err := b.pushBigImage(srv.base, fmt.Sprintf("team-%d/app", i), "v1", img); err != nil {
			t.Fatal(err)
		}
	}
	url := srv.base + "/v2/team-500/app/manifests/v1"
	b.getLoad(url, clients, 500*time.Millisecond) // opens the connections
	var lat [2][]time.Duration                    // [0] with the poller, [1] without
	var took [2]time.Duration
	for r := range rounds {
		for k := range 2 {
			who := (r + k) % 2
			stop := func() {}
			if who == 0 {
				stop = b.pollDashboard(srv.base, 500*time.Millisecond)
			}
			t0 := time.Now()
			_, l, err := b.getLoad(url, clients, round)
			took[who] += time.Since(t0)
			stop()
			if err != nil {
				t.Fatal(err)
			}
			lat[who] = append(lat[who], l...)
		}
	}
	slices.Sort(lat[0])
	slices.Sort(lat[1])
	rate := func(w int) float64 { return float64(len(lat[w])) / took[w].Seconds() }
	b.rep.section(fmt.Sprintf("manifest GET by tag, %d keep-alive clients, while a browser-like poller loads the dashboard overview every 500 ms vs without it (ceiling), %d rounds of %s", clients, rounds, round))
	b.rep.add("manifest GET rate", rate(0), rate(1), fmtRate, "≥ 0.95× ceiling", rate(0) >= 0.95*rate(1))
	p99, ceil99 := benchPercentile(lat[0], 99), benchPercentile(lat[1], 99)
	b.rep.add("  p99 latency", float64(p99), float64(ceil99), fmtDur, "≤ 1.10× ceiling", float64(p99) <= 1.1*float64(ceil99))
	b.printReport()
}

// pollDashboard loads /ui/ and /api/v1/overview every interval until the
// returned function is called.
func (b *benchRun) pollDashboard(base string, interval time.Duration) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			for _, p := range []string{"/ui/", "/api/v1/overview", "/ui/static/style.css"} {
				if resp, err := http.Get(base + p); err == nil {
					resp.Body.Close()
				}
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}
