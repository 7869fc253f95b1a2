//go:build bench && linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBenchSlowClients measures the slow-client hardening with
// the shipped [server] limits (body_idle_timeout 60s, max_connections
// 4096, max_connections_per_client 512): a normal client GETs a manifest
// from 127.0.0.1 while 2,000 connections from 127.0.0.2 announce a blob
// upload and stall after one byte. The ceiling column is the same load
// without the stalled connections, so value/ceiling is what the attack
// costs the normal client. The stalled requests are blob uploads because
// with the default configuration (no [auth]) there is no token endpoint:
// a POST to /auth/token is answered 404 at once and its body refused.
func TestBenchSlowClients(t *testing.T) {
	b := newBenchRun(t)
	srv := b.startProc(b.dataDir("slow"))
	b.slowClientPhase(srv)
	srv.stop()
	b.printReport()
}

// benchStalled is how many connections the attacker opens, and
// benchPerClient the server's default max_connections_per_client.
const benchStalled, benchPerClient = 2000, 512

// benchTrimWait is how long the slow-client benchmark leaves the server
// without requests after an attack: its idle trim runs after 2 s of quiet,
// checked every second.
const benchTrimWait = 3500 * time.Millisecond

// slowClientPhase pushes one small image, then runs the manifest GET load
// in rounds that alternate between no attack and benchStalled stalled
// uploads held open, and reports latency, the connections the server
// held, its RSS and its open file descriptors.
func (b *benchRun) slowClientPhase(srv *benchProc) {
	const clients, rounds, round = 4, 2, 5 * time.Second
	b.rep.section(fmt.Sprintf("slow clients: %d keep-alive clients GET a manifest from 127.0.0.1, %d rounds of %s without and with %d stalled blob uploads from 127.0.0.2 (default [server] limits; ceiling column: the same load without the stalled connections)",
		clients, rounds, round, benchStalled))
	img := newBenchImage(7000, 1024)
	if err := b.pushBlobs(srv.base, "bench/slow", img); err != nil {
		b.t.Fatal(err)
	}
	if err := b.putManifest(srv.base, "bench/slow", "latest", img.manifest); err != nil {
		b.t.Fatal(err)
	}
	url := srv.base + "/v2/bench/slow/manifests/latest"
	if _, _, err := b.getLoad(url, clients, time.Second); err != nil { // opens the connections
		b.t.Fatal(err)
	}
	idleFDs := srv.fds()

	var lat [2][]time.Duration // 0 without the attack, 1 with
	var took [2]time.Duration
	var rss, fds [2]int64
	var held, refused []int
	var after int64 // RSS once the attack is over and the server idle
	for r := range rounds {
		for k := range 2 {
			w := (r + k) % 2
			stopRSS, stopFDs := srv.watchRSS(), srv.watchFDs()
			var release func()
			if w == 1 {
				t0 := time.Now()
				h, c, rel := b.stallUploads(srv, benchStalled)
				b.t.Logf("round %d: %d stalled uploads opened and checked in %v: %d held, %d closed at once; server says %s",
					r, benchStalled, time.Since(t0).Round(time.Millisecond), h, c, b.connGauges(srv))
				held, refused, release = append(held, h), append(refused, c), rel
			}
			t0 := time.Now()
			_, l, err := b.getLoad(url, clients, round)
			if err != nil {
				b.t.Fatalf("manifest GET (attack %t): %v", w == 1, err)
			}
			took[w] += time.Since(t0)
			lat[w] = append(lat[w], l...)
			sampled, hwm := stopRSS()
			rss[w] = max(rss[w], sampled, hwm)
			fds[w] = max(fds[w], int64(stopFDs()))
			if release != nil {
				release()
				srv.waitFDs(idleFDs+16, 10*time.Second)
				// No requests now, so the server's idle trim (2 s of quiet)
				// returns the memory the stalled uploads held, and the next
				// round starts from a quiet server.
				time.Sleep(benchTrimWait)
				after = max(after, srv.rss())
			}
		}
	}

	slices.Sort(lat[0])
	slices.Sort(lat[1])
	rate := func(w int) float64 { return float64(len(lat[w])) / took[w].Seconds() }
	b.rep.add("manifest GET with the stalled connections held", rate(1), rate(0), fmtRate, "", false)
	b.durRow("  p50 latency", benchPercentile(lat[1], 50), benchPercentile(lat[0], 50), 0)
	b.durRow("  p99 latency", benchPercentile(lat[1], 99), benchPercentile(lat[0], 99), 0)
	b.rep.add(fmt.Sprintf("stalled connections held by the server (of %d)", benchStalled), 0, 0, fmtSpread(held),
		fmt.Sprintf("≤ %d (per-client cap)", benchPerClient), slices.Max(held) <= benchPerClient)
	b.rep.add("  closed at once, over the per-client cap", 0, 0, fmtSpread(refused), "", false)
	perHeld := func(v [2]int64) float64 { return float64(v[1]-v[0]) / float64(max(1, slices.Max(held))) }
	b.rep.add("peak server RSS", float64(rss[1]), float64(rss[0]), fmtMB, "", false)
	b.rep.add("  more per held connection", perHeld(rss), 0, func(v float64) string { return fmt.Sprintf("%.0f KB", v/1024) }, "", false)
	b.rep.add(fmt.Sprintf("  %s after the attack, no requests (idle trim)", benchTrimWait), float64(after), 0, fmtMB, "", false)
	b.rep.add("peak server open fds", float64(fds[1]), float64(fds[0]), fmtCount, "", false)
	b.rep.add("  more per held connection", perHeld(fds), 0, func(v float64) string { return fmt.Sprintf("%.1f", v) }, "", false)
}

// fmtCount formats a count.
func fmtCount(v float64) string { return fmt.Sprintf("%.0f", v) }

// fmtSpread returns a format that prints the counts of every round,
// "512" when they agree and "510–512" when they do not, whatever value
// the row is given.
func fmtSpread(counts []int) func(float64) string {
	return func(float64) string {
		lo, hi := slices.Min(counts), slices.Max(counts)
		if lo == hi {
			return fmt.Sprint(lo)
		}
		return fmt.Sprintf("%d–%d", lo, hi)
	}
}

// stallUploads opens n connections from 127.0.0.2, each sending the
// headers of a blob upload that announces 200,000 bytes, then one byte,
// then nothing. It then gives the server 2 s to close them: held counts
// those still open and silent, closed those the server reset or ended
// (a dial or write that failed included). release closes the held ones.
func (b *benchRun) stallUploads(srv *benchProc, n int) (held, closed int, release func()) {
	addr := strings.TrimPrefix(srv.base, "http://")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	req := fmt.Sprintf("POST /v2/bench/stall/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: %s\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: 200000\r\n\r\nx", benchDigest([]byte("never sent")), addr)
	conns := make([]net.Conn, n)
	var failed, answered atomic.Int64
	var firstAnswer atomic.Value
	benchParallel(50, n, func(_, i int) error {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			failed.Add(1) // the server resets some before the handshake ends
			return nil
		}
		io.WriteString(c, req) // a reset connection fails here: not an error
		conns[i] = c
		return nil
	})
	var wg sync.WaitGroup
	var open atomic.Int64
	deadline := time.Now().Add(2 * time.Second)
	for i, c := range conns {
		if c == nil {
			continue
		}
		wg.Go(func() {
			c.SetReadDeadline(deadline)
			line, err := bufio.NewReader(c).ReadString('\n')
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded) && line == "":
				c.SetReadDeadline(time.Time{})
				open.Add(1)
				return
			case line != "":
				answered.Add(1)
				firstAnswer.CompareAndSwap(nil, strings.TrimSpace(line))
			}
			c.Close()
			conns[i] = nil
		})
	}
	wg.Wait()
	if a := answered.Load(); a > 0 {
		b.t.Logf("the server answered %d stalled uploads instead of holding or closing them, the first with %q", a, firstAnswer.Load())
	}
	held = int(open.Load())
	return held, n - held - int(answered.Load()), func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
}

// connGauges returns the server's own count of open and refused
// connections, from /metrics.
func (b *benchRun) connGauges(srv *benchProc) string {
	_, body, err := b.hc.do(http.MethodGet, srv.base+"/metrics", nil, nil, 0, http.StatusOK)
	if err != nil {
		return err.Error()
	}
	var out []string
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "nora_http_connections_") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, ", ")
}

// fds counts the process's open file descriptors; 0 when /proc cannot
// tell, as it may be called off the test's goroutine.
func (p *benchProc) fds() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		p.t.Logf("count open fds: %v", err)
		return 0
	}
	return len(ents)
}

// watchFDs samples the open file descriptors every 50 ms until the
// returned function is called; that returns the largest sample.
func (p *benchProc) watchFDs() (stop func() int) {
	quit, res := make(chan struct{}), make(chan int)
	go func() {
		peak := p.fds()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				peak = max(peak, p.fds())
			case <-quit:
				res <- max(peak, p.fds())
				return
			}
		}
	}()
	return func() int {
		close(quit)
		return <-res
	}
}

// waitFDs waits up to limit for the open file descriptors to fall to at
// most want, so the next round starts from a quiet server.
func (p *benchProc) waitFDs(want int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		n := p.fds()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			p.t.Logf("server still has %d open fds %v after the stalled connections closed, want at most %d", n, limit, want)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
