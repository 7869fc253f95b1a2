//go:build bench

package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// wrkPhase measures manifest GETs with wrk, a C load generator, when it is
// installed: the Go client above spends more CPU per request than the
// registry does, so on two cores it, not the server, sets the pace.
func (b *benchRun) wrkPhase(srv *benchProc) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.t.Logf("wrk not installed (apt-get install wrk): manifest GET measured with the Go client only")
		return
	}
	const clients, rounds, dur = 32, 2, 5 * time.Second
	b.rep.section(fmt.Sprintf("manifest GET by tag with wrk, %d keep-alive connections, 2 threads, %d rounds of %s per server", clients, rounds, dur))
	path := "/v2/bench/small-000/manifests/latest"
	// Rounds alternate which server goes first, so that both see the
	// machine's load alike; each figure is the mean over the rounds.
	var res [2]wrkResult
	var steal [2]benchSteal
	for r := range rounds {
		for k := range 2 {
			who := (r + k) % 2 // 0 registry, 1 ceiling
			base := []string{srv.base, b.ceil.base}[who]
			s0 := readBenchSteal()
			got, err := runWrk(base+path, clients, dur)
			if err != nil {
				b.t.Fatalf("wrk: %v", err)
			}
			steal[who].add(s0, readBenchSteal())
			res[who].rate += got.rate / rounds
			res[who].p50 += got.p50 / rounds
			res[who].p99 += got.p99 / rounds
		}
	}
	b.rep.add("manifest GET (wrk)", res[0].rate, res[1].rate, fmtRate, "≥ 0.90× ceiling", res[0].rate >= 0.9*res[1].rate)
	b.durRow("  p50 latency", res[0].p50, res[1].p50, 0)
	b.ratioRow("  p99 latency", res[0].p99, res[1].p99, 1.2)
	b.stealRow(steal)
}

type wrkResult struct {
	rate     float64
	p50, p99 time.Duration
}

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)$`)
)

func runWrk(url string, clients int, dur time.Duration) (wrkResult, error) {
	out, err := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(clients), "-d"+dur.String(), "--latency",
		"-H", "Accept: "+benchManifestType, url).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("%v: %s", err, out)
	}
	if regexp.MustCompile(`Non-2xx`).Match(out) {
		return wrkResult{}, fmt.Errorf("non-2xx responses from %s:\n%s", url, out)
	}
	var r wrkResult
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no rate in wrk output:\n%s", out)
	}
	r.rate, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, l := range wrkLatency.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(l[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(l[3])]
		d := time.Duration(v * float64(unit))
		if string(l[1]) == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	return r, nil
}
