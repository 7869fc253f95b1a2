//go:build bench && linux

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
	const clients, rounds, dur = 32, 3, 5 * time.Second
	b.rep.section(fmt.Sprintf("manifest GET by tag with wrk, %d keep-alive connections, 2 threads, medians of %d rounds of %s per server", clients, rounds, dur))
	path := "/v2/bench/small-000/manifests/latest"
	// Rounds alternate which server goes first, so that both see the
	// machine's load alike; each figure is the median over the rounds.
	var rate, p50, p99 [2][]float64
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
			rate[who] = append(rate[who], got.rate)
			p50[who] = append(p50[who], float64(got.p50))
			p99[who] = append(p99[who], float64(got.p99))
		}
	}
	b.t.Logf("manifest GET (wrk), requests/s per round: registry %s, ceiling %s", benchRates(rate[0]), benchRates(rate[1]))
	med := func(v [2][]float64, who int) time.Duration { return time.Duration(benchMedianF(v[who])) }
	reg, ceil := benchMedianF(rate[0]), benchMedianF(rate[1])
	b.rep.add("manifest GET (wrk)", reg, ceil, fmtRate, "≥ 0.90× ceiling", reg >= 0.9*ceil)
	b.durRow("  p50 latency", med(p50, 0), med(p50, 1), 0)
	b.ratioRow("  p99 latency", med(p99, 0), med(p99, 1), 1.2)
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
