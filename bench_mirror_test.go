//go:build bench && linux

package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchMirror measures the pull-through cache: two registry processes,
// an upstream (open, no auth) and a cache with one [[mirror.upstreams]]
// pointing at it, reached through the path prefix up.example. Each figure
// sits next to a ceiling from the same run: pulling straight from the
// upstream for a cold pull, the same image pushed to a local repository of
// the cache for a warm one. Requests the upstream served are counted from
// its own /metrics. It takes about a minute and at most 3 GiB of disk.
func TestBenchMirror(t *testing.T) {
	b := newBenchRun(t)
	up := b.startProc(b.dataDir("upstream"))
	m := &mirrorBench{benchRun: b, up: up}
	m.seedUpstream()
	m.link = startBenchUplink(t, strings.TrimPrefix(up.base, "http://"), mirrorBenchUplink)

	dir := b.dataDir("cache")
	cache := m.startCache(dir)
	m.coldPhase(cache)
	m.warmPhase(cache)
	m.warmTagPhase(cache)
	cache.stop()
	if err := os.RemoveAll(dir); err != nil { // keeps the disk in use under 3 GiB
		t.Fatal(err)
	}
	// A cache of its own: one that holds the layer links it without
	// downloading it again.
	dir = b.dataDir("cache-uplink")
	cache = m.startCache(dir)
	m.uplinkPhase(cache)
	cache.stop()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}

	m.concurrentColdPhase(m.startCache(b.dataDir("cache-fifty")))
	up.stop()
	b.printReport()
}

const (
	// mirrorBenchLayer is the size of the big image's one layer.
	mirrorBenchLayer = 1 << 30
	// mirrorBenchSmall is how many small images the cold manifest and
	// time-to-first-byte medians are taken over.
	mirrorBenchSmall = 20
	// mirrorBenchRepo holds the big image, tag latest, on the upstream.
	mirrorBenchRepo = "bench/big"
	// mirrorBenchUplink is the rate of the throttled uplink, in bytes a
	// second: 200 MB/s, a fast uplink, still slower than the local disk.
	mirrorBenchUplink = 200_000_000
)

// mirrorBench is one run: the upstream process and the images it holds.
type mirrorBench struct {
	*benchRun
	up    *benchProc
	link  *benchUplink // to up, throttled
	big   mirrorImage
	small []mirrorImage // tags s00, s01, … of bench/small
}

// mirrorImage is a one-layer OCI image whose layer is generated, never
// held in memory.
type mirrorImage struct {
	layer            benchBlob
	config, manifest []byte
}

func newMirrorImage(seed, layerSize int64) mirrorImage {
	img := mirrorImage{layer: newBenchBlob(seed, layerSize)}
	img.config = fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, img.layer.digest)
	img.manifest = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		benchManifestType, benchDigest(img.config), len(img.config), img.layer.digest, img.layer.size)
	return img
}

// size is what pulling the image moves.
func (img mirrorImage) size() int64 {
	return img.layer.size + int64(len(img.config)+len(img.manifest))
}

// pushBigImage pushes img to repo:tag at base.
func (b *benchRun) pushBigImage(base, repo, tag string, img mirrorImage) error {
	if err := b.pushMono(base, repo, img.layer); err != nil {
		return err
	}
	u := base + "/v2/" + repo + "/blobs/uploads/?digest=" + benchDigest(img.config)
	if _, _, err := b.hc.do(http.MethodPost, u, benchOctet, strings.NewReader(string(img.config)), int64(len(img.config)), http.StatusCreated); err != nil {
		return err
	}
	return b.putManifest(base, repo, tag, img.manifest)
}

// benchFetch is what one timed GET measured, from sending the request.
type benchFetch struct {
	total time.Duration
	ttfb  time.Duration // to the first body byte
	// tail is from having all but the last byte to having it: the time
	// the cache holds a cold blob's last byte back, until it is verified.
	tail time.Duration
}

// pullTimedImage pulls repo:tag as a client does: the manifest by tag,
// then the config, then the layer. The total is the whole pull's; ttfb
// and tail are the layer's.
func (b *benchRun) pullTimedImage(base, repo, tag string, img mirrorImage) (benchFetch, error) {
	t0 := time.Now()
	if err := b.get(base + "/v2/" + repo + "/manifests/" + tag); err != nil {
		return benchFetch{}, err
	}
	if _, err := b.fetchTimed(base+"/v2/"+repo+"/blobs/"+benchDigest(img.config), int64(len(img.config))); err != nil {
		return benchFetch{}, err
	}
	f, err := b.fetchTimed(base+"/v2/"+repo+"/blobs/"+img.layer.digest, img.layer.size)
	f.total = time.Since(t0)
	return f, err
}

// fetchTimed GETs url and reads the body through a 1 MiB buffer, checking
// it is want bytes long.
func (b *benchRun) fetchTimed(url string, want int64) (benchFetch, error) {
	var f benchFetch
	t0 := time.Now()
	resp, err := b.hc.c.Get(url)
	if err != nil {
		return f, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return f, fmt.Errorf("GET %s = %s, want 200", url, resp.Status)
	}
	buf := make([]byte, 1<<20)
	var n int64
	var allButLast time.Duration
	for {
		m, err := resp.Body.Read(buf)
		if m > 0 && n == 0 {
			f.ttfb = time.Since(t0)
		}
		n += int64(m)
		if allButLast == 0 && n >= want-1 {
			allButLast = time.Since(t0)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return f, err
		}
	}
	f.total = time.Since(t0)
	f.tail = f.total - allButLast
	if n != want {
		return f, fmt.Errorf("GET %s read %d bytes, want %d", url, n, want)
	}
	return f, nil
}

// seedUpstream pushes the big image and the small ones to the upstream.
func (m *mirrorBench) seedUpstream() {
	m.big = newMirrorImage(3000, mirrorBenchLayer)
	if err := m.pushBigImage(m.up.base, mirrorBenchRepo, "latest", m.big); err != nil {
		m.t.Fatalf("push the big image upstream: %v", err)
	}
	for i := range mirrorBenchSmall {
		img := newMirrorImage(3100+int64(i), 64<<10)
		if err := m.pushBigImage(m.up.base, "bench/small", fmt.Sprintf("s%02d", i), img); err != nil {
			m.t.Fatalf("push a small image upstream: %v", err)
		}
		m.small = append(m.small, img)
	}
}

// startCache starts a registry on dataDir that mirrors the upstream under
// the host name up.example. Tags are trusted for 10 minutes, longer than
// the run, so no warm tag GET revalidates.
func (m *mirrorBench) startCache(dataDir string) *benchProc {
	return m.startProcWith(dataDir, fmt.Sprintf(`[storage]
driver = "filesystem"
root = %q

[[mirror.upstreams]]
name = "up"
url = %q
insecure = true
hosts = ["up.example"]
revalidate = "10m"

[[mirror.upstreams]]
name = "link"
url = "http://%s"
insecure = true
hosts = ["link.example"]
revalidate = "10m"
`, filepath.Join(dataDir, "data"), m.up.base, m.link.addr))
}

// uplinkPhase pulls the big image straight from the upstream over the
// throttled uplink (the ceiling), then cold through the cache over the
// same uplink: what a cache in front of a real uplink costs.
func (m *mirrorBench) uplinkPhase(cache *benchProc) {
	b := m.benchRun
	b.rep.section(fmt.Sprintf("cold pull of the 1 GiB image over an uplink, a proxy throttling each connection to at most %d MB/s: through the cache (/v2/link.example/…) vs straight from the upstream over the same uplink (ceiling)", mirrorBenchUplink/1_000_000))
	direct, err := b.pullTimedImage("http://"+m.link.addr, mirrorBenchRepo, "latest", m.big)
	if err != nil {
		b.t.Fatalf("pull over the uplink: %v", err)
	}
	cold, err := b.pullTimedImage(cache.base, "link.example/"+mirrorBenchRepo, "latest", m.big)
	if err != nil {
		b.t.Fatalf("cold pull through the cache over the uplink: %v", err)
	}
	b.t.Logf("1 GiB image over the uplink, direct: %+v; cold through the cache: %+v", direct, cold)
	b.rep.add("cold pull of the 1 GiB image over the uplink", float64(cold.total), float64(direct.total), fmtDur,
		"≤ 1.10× ceiling", float64(cold.total) <= 1.1*float64(direct.total))
	b.rep.add("  the uplink's rate, as the direct pull got it", float64(m.big.size())/direct.total.Seconds(), 0, fmtMBps, "", false)
	b.durRow("  of which waiting for the held-back last byte", cold.tail, 0, 0)
	m.ttfbRow("  time to first byte of the layer", cold.ttfb, direct.ttfb)
}

// coldPhase pulls, through a cache that holds nothing, each small image
// and then the big one, each right after pulling it straight from the
// upstream, the ceiling.
func (m *mirrorBench) coldPhase(cache *benchProc) {
	b := m.benchRun
	b.rep.section(fmt.Sprintf("cold pull through the cache (/v2/up.example/…) vs straight from the upstream (ceiling); medians of %d small images (64 KiB layer), one cold 1 GiB image (median of 3 upstream pulls)", mirrorBenchSmall))
	var man, ttfb [2][]time.Duration // [0] cache, [1] upstream
	for i, img := range m.small {
		tag := fmt.Sprintf("s%02d", i)
		for who, base := range []string{cache.base + "/v2/up.example/bench/small", m.up.base + "/v2/bench/small"} {
			t0 := time.Now()
			if err := b.get(base + "/manifests/" + tag); err != nil {
				b.t.Fatalf("cold manifest GET: %v", err)
			}
			man[who] = append(man[who], time.Since(t0))
			f, err := b.fetchTimed(base+"/blobs/"+img.layer.digest, img.layer.size)
			if err != nil {
				b.t.Fatalf("cold blob GET: %v", err)
			}
			ttfb[who] = append(ttfb[who], f.ttfb)
		}
	}
	b.t.Logf("cold manifest GET, cache: %v; upstream: %v", man[0], man[1])
	b.t.Logf("cold 64 KiB blob TTFB, cache: %v; upstream: %v", ttfb[0], ttfb[1])

	var upTotal, upTTFB []time.Duration
	for range 3 {
		f, err := b.pullTimedImage(m.up.base, mirrorBenchRepo, "latest", m.big)
		if err != nil {
			b.t.Fatalf("pull from the upstream: %v", err)
		}
		upTotal, upTTFB = append(upTotal, f.total), append(upTTFB, f.ttfb)
	}
	before := cache.rss()
	stop := cache.watchRSS()
	cold, err := b.pullTimedImage(cache.base, "up.example/"+mirrorBenchRepo, "latest", m.big)
	if err != nil {
		b.t.Fatalf("cold pull through the cache: %v", err)
	}
	sampled, hwm := stop()
	b.t.Logf("1 GiB image, upstream: %v (TTFB %v); cold through the cache: %+v", upTotal, upTTFB, cold)
	// The warm phase pulls this copy; pushing it here times the cache's
	// own write path, which a cold pull cannot beat.
	t0 := time.Now()
	if err := b.pushBigImage(cache.base, "bench/local", "latest", m.big); err != nil {
		b.t.Fatalf("push the big image to the cache: %v", err)
	}
	push := time.Since(t0)

	ceil := benchMedian(upTotal)
	b.rep.add("cold pull of the 1 GiB image (manifest, config, layer)", float64(cold.total), float64(ceil), fmtDur,
		"≤ 1.10× ceiling", float64(cold.total) <= 1.1*float64(ceil))
	b.rep.add("  as throughput", float64(m.big.size())/cold.total.Seconds(), float64(m.big.size())/ceil.Seconds(), fmtMBps, "", false)
	b.durRow("  of which waiting for the held-back last byte (verification)", cold.tail, 0, 0)
	b.durRow("  push of the same image to the cache (its write path)", push, ceil, 0)
	m.ttfbRow("  time to first byte of the cold 1 GiB layer", cold.ttfb, benchMedian(upTTFB))
	m.ttfbRow("time to first byte of a cold 64 KiB layer, median", benchMedian(ttfb[0]), benchMedian(ttfb[1]))
	b.durRow("cold manifest GET by tag, median", benchMedian(man[0]), benchMedian(man[1]), 0)
	b.rep.add("peak cache RSS (VmHWM) during the cold 1 GiB pull", float64(max(sampled, hwm)), 0, fmtMB, "", false)
	b.rep.add("  RSS before", float64(before), 0, fmtMB, "", false)
}

// ttfbRow reports a time to first byte against the upstream's own.
func (m *mirrorBench) ttfbRow(name string, d, ceil time.Duration) {
	m.rep.add(name, float64(d), float64(ceil), fmtDur, "≤ ceiling + 50ms", d <= ceil+50*time.Millisecond)
}

// warmPhase pulls the big image in turns from the local repository of the
// cache that coldPhase pushed it to (the ceiling) and through the cache,
// which now holds it. Both read the same blob file.
func (m *mirrorBench) warmPhase(cache *benchProc) {
	const runs = 7
	b := m.benchRun
	b.rep.section(fmt.Sprintf("warm pull of the 1 GiB image through the cache vs the same image pushed to a local repository of the cache process (ceiling), median of %d", runs))
	var rate [2][]float64 // [0] through the cache, [1] local
	for run := range runs {
		for k := range 2 {
			who := (run + k) % 2
			repo := "up.example/" + mirrorBenchRepo
			if who == 1 {
				repo = "bench/local"
			}
			f, err := b.pullTimedImage(cache.base, repo, "latest", m.big)
			if err != nil {
				b.t.Fatalf("warm pull of %s: %v", repo, err)
			}
			rate[who] = append(rate[who], float64(m.big.size())/f.total.Seconds())
		}
	}
	b.t.Logf("warm pull 1 GiB image, MB/s per run: cache %s, local %s", benchMBs(rate[0]), benchMBs(rate[1]))
	b.throughputRow("warm pull of the 1 GiB image", benchMedianF(rate[0]), benchMedianF(rate[1]))
}

// warmTagPhase GETs the cached image's manifest by tag, within the
// revalidation interval, and the local one's, from a few keep-alive
// clients in alternating rounds, counting what the upstream served
// meanwhile.
func (m *mirrorBench) warmTagPhase(cache *benchProc) {
	const clients, rounds, round = 4, 4, 1250 * time.Millisecond
	b := m.benchRun
	b.rep.section(fmt.Sprintf("warm manifest GET by tag, %d keep-alive clients, %d rounds of %s each: cached tag within the revalidation interval vs a local repository on the same process (ceiling)", clients, rounds, round))
	urls := [2]string{
		cache.base + "/v2/up.example/" + mirrorBenchRepo + "/manifests/latest",
		cache.base + "/v2/bench/local/manifests/latest",
	}
	for _, u := range urls {
		b.getLoad(u, clients, 500*time.Millisecond) // opens the connections
	}
	before := b.requestCounts(m.up)
	var lat [2][]time.Duration
	var took [2]time.Duration
	for r := range rounds {
		for k := range 2 {
			who := (r + k) % 2
			t0 := time.Now()
			_, l, err := b.getLoad(urls[who], clients, round)
			if err != nil {
				b.t.Fatalf("warm manifest GET: %v", err)
			}
			took[who] += time.Since(t0)
			lat[who] = append(lat[who], l...)
		}
	}
	served := b.requestCounts(m.up).since(before)
	slices.Sort(lat[0])
	slices.Sort(lat[1])
	rate := func(w int) float64 { return float64(len(lat[w])) / took[w].Seconds() }
	b.rep.add("manifest GET by tag, cached", rate(0), rate(1), fmtRate, "", false)
	b.durRow("  p50 latency", benchPercentile(lat[0], 50), benchPercentile(lat[1], 50), 0)
	b.ratioRow("  p99 latency", benchPercentile(lat[0], 99), benchPercentile(lat[1], 99), 1.2)
	b.rep.add("  upstream requests meanwhile", float64(served.total()), 0, fmtCount, "0", served.total() == 0)
	b.t.Logf("upstream requests during the warm tag GETs: %v", served)
}

// concurrentColdPhase has 50 clients pull the big image at once through a
// cache that holds nothing, and counts what the upstream served.
func (m *mirrorBench) concurrentColdPhase(cache *benchProc) {
	const clients = 50
	b := m.benchRun
	b.rep.section(fmt.Sprintf("%d clients pull one cold image (1 GiB layer) through the cache at once", clients))
	before := b.requestCounts(m.up)
	stop := cache.watchRSS()
	t0 := time.Now()
	var ttfb []time.Duration
	var totals []time.Duration
	done := make(chan benchFetch, clients)
	err := benchParallel(clients, clients, func(_, _ int) error {
		f, err := b.pullTimedImage(cache.base, "up.example/"+mirrorBenchRepo, "latest", m.big)
		done <- f
		return err
	})
	took := time.Since(t0)
	sampled, hwm := stop()
	if err != nil {
		b.t.Fatalf("concurrent cold pull: %v", err)
	}
	close(done)
	for d := range done {
		totals, ttfb = append(totals, d.total), append(ttfb, d.ttfb)
	}
	served := b.requestCounts(m.up).since(before)
	b.t.Logf("upstream requests during the %d cold pulls: %v", clients, served)
	slices.Sort(totals)
	slices.Sort(ttfb)

	b.durRow("wall time, all clients done", took, 0, 0)
	b.rep.add("  aggregate pull throughput", float64(clients)*float64(m.big.size())/took.Seconds(), 0, fmtMBps, "", false)
	b.durRow("  one client's pull, fastest", totals[0], 0, 0)
	b.durRow("  one client's pull, median", benchMedian(totals), 0, 0)
	b.durRow("  layer time to first byte, median", benchMedian(ttfb), 0, 0)
	b.durRow("  layer time to first byte, slowest", ttfb[len(ttfb)-1], 0, 0)
	man, blobs := served.route("manifests"), served.route("blobs")
	b.rep.add("upstream manifest requests", float64(man), 0, fmtCount, "1", man == 1)
	b.rep.add("upstream blob requests (config + layer)", float64(blobs), 0, fmtCount, "2", blobs == 2)
	b.rep.add("  other upstream requests (/v2/ and the like)", float64(served.total()-man-blobs), 0, fmtCount, "", false)
	b.memRow("peak cache RSS (VmHWM) while they pull", max(hwm, sampled), 64<<20)
	cache.stop()
}

// benchCounts are requests a server served, by "METHOD route".
type benchCounts map[string]int

// requestCounts reads p's nora_http_requests_total from its /metrics,
// leaving out the scrapes of /metrics.
func (b *benchRun) requestCounts(p *benchProc) benchCounts {
	_, body, err := b.hc.do(http.MethodGet, p.base+"/metrics", nil, nil, 0, http.StatusOK)
	if err != nil {
		b.t.Fatal(err)
	}
	counts := benchCounts{}
	for line := range strings.Lines(string(body)) {
		rest, ok := strings.CutPrefix(line, "nora_http_requests_total{")
		if !ok {
			continue
		}
		labels, value, _ := strings.Cut(rest, "} ")
		route := benchLabel(labels, "route")
		if strings.Contains(route, "metrics") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			b.t.Fatalf("/metrics line %q: %v", line, err)
		}
		counts[benchLabel(labels, "method")+" "+route] += int(v)
	}
	return counts
}

// benchLabel returns the value of label name in a Prometheus label list.
func benchLabel(labels, name string) string {
	_, v, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

// since returns the requests served after before.
func (c benchCounts) since(before benchCounts) benchCounts {
	d := benchCounts{}
	for k, v := range c {
		if n := v - before[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

func (c benchCounts) total() (n int) {
	for _, v := range c {
		n += v
	}
	return n
}

// route counts the requests whose route ends in /suffix/{…}.
func (c benchCounts) route(suffix string) (n int) {
	for k, v := range c {
		_, route, _ := strings.Cut(k, " ")
		if strings.Contains(route, "/"+suffix+"/{") {
			n += v
		}
	}
	return n
}

func (c benchCounts) String() string {
	keys := slices.Sorted(maps.Keys(c))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, c[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
