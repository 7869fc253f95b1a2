//go:build bench && linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

const benchManifestType = "application/vnd.oci.image.manifest.v1+json"

// benchImage is a one-layer OCI image held in memory.
type benchImage struct {
	layer, config, manifest []byte
}

func benchDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// newBenchImage returns an image with a random layer of layerSize bytes.
func newBenchImage(seed uint64, layerSize int) benchImage {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	img := benchImage{layer: make([]byte, layerSize)}
	rand.NewChaCha8(key).Read(img.layer)
	img.config = fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, benchDigest(img.layer))
	img.manifest = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		benchManifestType, benchDigest(img.config), len(img.config), benchDigest(img.layer), len(img.layer))
	return img
}

// pushBlobs uploads the image's layer and config, each in one POST.
func (b *benchRun) pushBlobs(base, repo string, img benchImage) error {
	for _, blob := range [][]byte{img.layer, img.config} {
		u := base + "/v2/" + repo + "/blobs/uploads/?digest=" + benchDigest(blob)
		if _, _, err := b.hc.do(http.MethodPost, u, benchOctet, strings.NewReader(string(blob)), int64(len(blob)), http.StatusCreated); err != nil {
			return err
		}
	}
	return nil
}

func (b *benchRun) putManifest(base, repo, ref string, manifest []byte) error {
	hdr := http.Header{"Content-Type": {benchManifestType}}
	_, _, err := b.hc.do(http.MethodPut, base+"/v2/"+repo+"/manifests/"+ref, hdr, strings.NewReader(string(manifest)), int64(len(manifest)), http.StatusCreated)
	return err
}

// smallImagesPhase pushes 200 images, each a 1 MiB random layer, a config
// and a manifest, from 8 concurrent clients, in five rounds per server that
// alternate between the registry and the ceiling so that both see the
// same machine. Each rate is the median of its server's rounds: a round
// is about a second, and on a virtual machine one round in a few meets
// the host's doing (stolen CPU; freed memory the host must map again: one
// profiled ceiling run spent 9x its usual CPU copying into the page
// cache), which a total over two rounds let decide the figure.
func (b *benchRun) smallImagesPhase(srv *benchProc) {
	const n, clients, rounds = 200, 8, 5
	disk := newBenchDisk(b.dir)
	b.rep.section(fmt.Sprintf("%d small images, %d concurrent clients, medians of %d rounds per server (layer POST ?digest= + config POST ?digest= + manifest PUT; %s)", n, clients, rounds, disk.describe()))
	// Each server and round gets its own content: see blobPhase.
	cpuOf := [2]func() time.Duration{srv.cpu, b.ceil.cpu}
	var cpu [2]time.Duration
	// The disk's requests per image: what a slower or busier disk charges
	// for, and what this machine's load moves least.
	var writes, flushes [2]int64
	var steal [2]benchSteal
	diskOK := true
	push := func(who int, base string, seed uint64) time.Duration {
		imgs := make([]benchImage, n)
		for i := range imgs {
			imgs[i] = newBenchImage(seed+uint64(i), 1<<20)
		}
		defer func() {
			for _, img := range imgs {
				b.ceil.forget(benchDigest(img.layer))
				b.ceil.forget(benchDigest(img.config))
			}
		}()
		syscall.Sync()
		t0, c0, s0 := time.Now(), cpuOf[who](), readBenchSteal()
		w0, f0, ok0 := disk.counts()
		defer func() {
			cpu[who] += cpuOf[who]() - c0
			steal[who].add(s0, readBenchSteal())
			w1, f1, ok1 := disk.counts()
			writes[who] += w1 - w0
			flushes[who] += f1 - f0
			diskOK = diskOK && ok0 && ok1
		}()
		err := benchParallel(clients, n, func(_, i int) error {
			repo := fmt.Sprintf("bench/small-%03d", i)
			if err := b.pushBlobs(base, repo, imgs[i]); err != nil {
				return err
			}
			return b.putManifest(base, repo, "latest", imgs[i].manifest)
		})
		if err != nil {
			b.t.Fatalf("small images: %v", err)
		}
		return time.Since(t0)
	}
	var rate [2][]float64
	for r := range rounds {
		for k := range 2 {
			who := (r + k + 1) % 2 // 0 registry, 1 ceiling, which starts
			base := srv.base
			if who == 1 {
				base = b.ceil.base
			}
			rate[who] = append(rate[who], n/push(who, base, uint64(1000*(1+2*r+who))).Seconds())
		}
	}
	b.t.Logf("push small images, images/s per round: registry %s, ceiling %s", benchRates(rate[0]), benchRates(rate[1]))
	reg, ceil := benchMedianF(rate[0]), benchMedianF(rate[1])
	b.rep.add("push small images", reg, ceil, fmtRate, "≥ 0.95× ceiling", reg >= 0.95*ceil)
	// As for manifest GETs: CPU per image moves less with the machine's
	// load than the rate.
	perImage := func(who int) float64 { return float64(cpu[who]) / float64(rounds*n) }
	b.rep.add("  server CPU per image", perImage(0), perImage(1), fmtMicros, "", false)
	if diskOK {
		perImage := func(v [2]int64, who int) float64 { return float64(v[who]) / float64(rounds*n) }
		b.rep.add("  disk writes per image", perImage(writes, 0), perImage(writes, 1), fmtTenths, "", false)
		b.rep.add("  disk cache flushes per image", perImage(flushes, 0), perImage(flushes, 1), fmtTenths, "", false)
	}
	b.stealRow(steal)
}

func fmtTenths(v float64) string { return fmt.Sprintf("%.1f", v) }

// manifestGetPhase measures GET manifests/latest of one image from 32
// keep-alive clients in rounds of 5 s that alternate between the registry
// and the ceiling so that both see the same machine. Each rate is the
// median of its server's rounds, as for small images.
func (b *benchRun) manifestGetPhase(srv *benchProc) {
	const clients, rounds, round = 32, 3, 5 * time.Second
	b.rep.section(fmt.Sprintf("manifest GET by tag, %d keep-alive clients, medians of %d rounds of %s per server", clients, rounds, round))
	path := "/v2/bench/small-000/manifests/latest"
	for _, base := range []string{b.ceil.base, srv.base} {
		b.getLoad(base+path, clients, time.Second) // opens the connections
	}
	var n [2]int
	var rates [2][]float64
	var cpu [2]time.Duration
	var steal [2]benchSteal
	var lat [2][]time.Duration
	cpuOf := [2]func() time.Duration{srv.cpu, b.ceil.cpu}
	for r := range rounds {
		for k := range 2 {
			who := (r + k) % 2 // 0 registry, 1 ceiling
			base := srv.base
			if who == 1 {
				base = b.ceil.base
			}
			t0, c0, s0 := time.Now(), cpuOf[who](), readBenchSteal()
			_, l, err := b.getLoad(base+path, clients, round)
			if err != nil {
				b.t.Fatalf("manifest GET: %v", err)
			}
			rates[who] = append(rates[who], float64(len(l))/time.Since(t0).Seconds())
			cpu[who] += cpuOf[who]() - c0
			steal[who].add(s0, readBenchSteal())
			n[who] += len(l)
			lat[who] = append(lat[who], l...)
		}
	}
	b.t.Logf("manifest GET, requests/s per round: registry %s, ceiling %s", benchRates(rates[0]), benchRates(rates[1]))
	reg, ceil := benchMedianF(rates[0]), benchMedianF(rates[1])
	slices.Sort(lat[0])
	slices.Sort(lat[1])
	b.rep.add("manifest GET", reg, ceil, fmtRate, "≥ 0.90× ceiling", reg >= 0.9*ceil)
	// Server CPU per request moves less with the machine's load than the
	// rate, which the load client on the same cores shares.
	perReq := func(who int) float64 { return float64(cpu[who]) / float64(n[who]) }
	b.rep.add("  server CPU per request", perReq(0), perReq(1), fmtMicros, "", false)
	b.durRow("  p50 latency", benchPercentile(lat[0], 50), benchPercentile(lat[1], 50), 0)
	b.ratioRow("  p99 latency", benchPercentile(lat[0], 99), benchPercentile(lat[1], 99), 1.2)
	b.stealRow(steal)
}

// getLoad sends GET url from clients goroutines for dur and returns the
// rate and every request's latency, sorted.
func (b *benchRun) getLoad(url string, clients int, dur time.Duration) (float64, []time.Duration, error) {
	var (
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	t0 := time.Now()
	end := t0.Add(dur)
	for range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<15)
			var err error
			for time.Now().Before(end) {
				s := time.Now()
				if err = b.get(url); err != nil {
					break
				}
				lat = append(lat, time.Since(s))
			}
			mu.Lock()
			all = append(all, lat...)
			if first == nil {
				first = err
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(all)
	return float64(len(all)) / time.Since(t0).Seconds(), all, first
}

func (b *benchRun) get(url string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", benchManifestType)
	resp, err := b.hc.c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s = %s", url, resp.Status)
	}
	return nil
}

// tagsPhase pushes 10,000 tags of one small manifest to a repository, from
// 1, 8 and 32 clients, then lists them whole and in pages of 100. Each
// push runs three rounds per server, each to a repository of its own, that
// alternate which server goes first, as the other phases do, and each
// figure is the median of its server's rounds: one push with one client
// is a few seconds of this disk's syncs, whose cost moves from minute to
// minute, and the second of two back-to-back pushes was the registry's.
func (b *benchRun) tagsPhase(srv *benchProc) {
	const n, listRuns, rounds = 10000, 5, 3
	b.rep.section(fmt.Sprintf("%d tags on one repository (same manifest; pushes: medians of %d rounds per server; lists averaged over %d runs)", n, rounds, listRuns))
	img := newBenchImage(9999, 1024)
	// One client waits out every commit's sync; more share each sync.
	limit := map[int]time.Duration{1: 4 * time.Second, 8: 1500 * time.Millisecond, 32: 1500 * time.Millisecond}
	var steal [2]benchSteal
	for _, clients := range []int{1, 8, 32} {
		push := func(who int, base, repo string) time.Duration {
			if err := b.pushBlobs(base, repo, img); err != nil {
				b.t.Fatal(err)
			}
			t0, s0 := time.Now(), readBenchSteal()
			err := benchParallel(clients, n, func(_, i int) error {
				return b.putManifest(base, repo, fmt.Sprintf("v%05d", i), img.manifest)
			})
			if err != nil {
				b.t.Fatalf("tag push: %v", err)
			}
			steal[who].add(s0, readBenchSteal())
			return time.Since(t0)
		}
		var took [2][]time.Duration // [0] registry, [1] ceiling
		for r := range rounds {
			for k := range 2 {
				who := (r + k + 1) % 2 // the ceiling starts
				base := []string{srv.base, b.ceil.base}[who]
				took[who] = append(took[who], push(who, base, benchTagsRepo(clients, r)))
			}
		}
		b.t.Logf("push %d tags, %d client(s), per round: registry %v, ceiling %v", n, clients, took[0], took[1])
		b.durRow(fmt.Sprintf("push %d tags, %d client(s)", n, clients), benchMedian(took[0]), benchMedian(took[1]), limit[clients])
	}
	b.stealRow(steal)

	listPath := "/v2/" + benchTagsRepo(8, 0) + "/tags/list"
	_, body, err := b.hc.do(http.MethodGet, srv.base+listPath, nil, nil, 0, http.StatusOK)
	if err != nil {
		b.t.Fatal(err)
	}
	var list struct{ Tags []string }
	if err := json.Unmarshal(body, &list); err != nil || len(list.Tags) != n {
		b.t.Fatalf("tags/list = %d tags (%v), want %d", len(list.Tags), err, n)
	}
	b.ceil.setTagList(listPath, body)
	whole := func(base string) time.Duration {
		return b.avg(listRuns, func() error {
			_, _, err := b.hc.do(http.MethodGet, base+listPath, nil, nil, 0, http.StatusOK)
			return err
		})
	}
	b.durRow(fmt.Sprintf("list %d tags, one GET", n), whole(srv.base), whole(b.ceil.base), 15*time.Millisecond)
	paged := b.avg(listRuns, func() error {
		got, err := b.listPaged(srv.base, listPath+"?n=100")
		if err == nil && got != n {
			err = fmt.Errorf("paged tags/list = %d tags, want %d", got, n)
		}
		return err
	})
	b.durRow(fmt.Sprintf("list %d tags, pages of 100 (Link)", n), paged, 0, 0)
}

// benchTagsRepo names the repository of a tags push round.
func benchTagsRepo(clients, round int) string {
	return fmt.Sprintf("bench/tags-%d-%d", clients, round)
}

// listPaged follows Link headers from first and counts the tags.
func (b *benchRun) listPaged(base, first string) (int, error) {
	total, next := 0, first
	for next != "" {
		resp, body, err := b.hc.do(http.MethodGet, base+next, nil, nil, 0, http.StatusOK)
		if err != nil {
			return total, err
		}
		var page struct{ Tags []string }
		if err := json.Unmarshal(body, &page); err != nil {
			return total, err
		}
		total += len(page.Tags)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
			if start < 0 || end < start || !strings.Contains(link, `rel="next"`) {
				return total, fmt.Errorf("malformed Link %q", link)
			}
			next = strings.TrimPrefix(link[start+1:end], base)
		}
	}
	return total, nil
}

// avg runs fn once to warm up, then runs times, and returns the mean time.
func (b *benchRun) avg(runs int, fn func() error) time.Duration {
	if err := fn(); err != nil {
		b.t.Fatal(err)
	}
	t0 := time.Now()
	for range runs {
		if err := fn(); err != nil {
			b.t.Fatal(err)
		}
	}
	return time.Since(t0) / time.Duration(runs)
}
