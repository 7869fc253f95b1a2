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
	const clients, dur = 32, 5 * time.Second
	b.rep.section(fmt.Sprintf("manifest GET by tag with wrk, %d keep-alive connections, 2 threads, %s per server", clients, dur))
	path := "/v2/bench/small-000/manifests/latest"
	var res [2]wrkResult
	for k, base := range []string{srv.base, b.ceil.base} {
		r, err := runWrk(base+path, clients, dur)
		if err != nil {
			b.t.Fatalf("wrk: %v", err)
		}
		res[k] = r
	}
	b.rep.add("manifest GET (wrk)", res[0].rate, res[1].rate, fmtRate, "≥ 0.90× ceiling", res[0].rate >= 0.9*res[1].rate)
	b.durRow("  p50 latency", res[0].p50, res[1].p50, 0)
	b.ratioRow("  p99 latency", res[0].p99, res[1].p99, 1.2)
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
