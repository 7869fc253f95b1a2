//go:build bench && linux

package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBenchReplicate measures `registry replicate --to` between two
// registry processes against `crane copy` of the same images between two
// others (the ceiling), then a re-run over 1,000 tags with nothing
// changed. It takes about a minute and 3 GiB of disk.
func TestBenchReplicate(t *testing.T) {
	b := newBenchRun(t)
	crane, err := exec.LookPath("crane")
	if err != nil {
		t.Fatalf("crane is needed (see .ci/run): %v", err)
	}
	srcDir := b.dataDir("repl-src")
	src := b.startProc(srcDir)
	toCrane, toNora := b.startProc(b.dataDir("repl-crane")), b.startProc(b.dataDir("repl-nora"))
	sizes := []int64{512 << 20, 256 << 20, 128 << 20, 64 << 20, 32 << 20, 16 << 20, 8 << 20, 8 << 20}
	var total int64
	for i, size := range sizes {
		img := newMirrorImage(5000+int64(i), size)
		if err := b.pushBigImage(src.base, fmt.Sprintf("bench/img%d", i), "v1", img); err != nil {
			t.Fatal(err)
		}
		total += img.size()
	}
	b.rep.section(fmt.Sprintf("replication of %d images, one layer each (8 MiB to 512 MiB, %s in all), between two registry processes: registry replicate --to vs crane copy of each image (ceiling)", len(sizes), fmtMB(float64(total))))
	host := func(p *benchProc) string { return strings.TrimPrefix(p.base, "http://") }
	t0 := time.Now()
	for i := range sizes {
		repo := fmt.Sprintf("bench/img%d:v1", i)
		if out, err := exec.Command(crane, "copy", "--insecure", host(src)+"/"+repo, host(toCrane)+"/"+repo).CombinedOutput(); err != nil {
			t.Fatalf("crane copy %s: %v\n%s", repo, err, out)
		}
	}
	craneTook := time.Since(t0)
	cfg := filepath.Join(srcDir, "nora.toml")
	took, rss := b.replicate(cfg, "--to", toNora.base, "bench/**")
	b.rep.add("replicate 1 GiB of images", float64(took), float64(craneTook), fmtDur, "≤ 1.11× ceiling (≥ 90% of its speed)", float64(took) <= float64(craneTook)/0.9)
	b.rep.add("  as throughput", float64(total)/took.Seconds(), float64(total)/craneTook.Seconds(), fmtMBps, "", false)
	b.memRow("  peak RSS of registry replicate", rss, 64<<20)

	const tags = 1000
	img := newMirrorImage(6000, 4096)
	if err := b.pushBigImage(src.base, "bench/tags", "t0", img); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < tags; i++ {
		if err := b.putManifest(src.base, "bench/tags", fmt.Sprintf("t%d", i), img.manifest); err != nil {
			t.Fatal(err)
		}
	}
	b.replicate(cfg, "--to", toNora.base, "bench/tags")
	again, _ := b.replicate(cfg, "--to", toNora.base, "bench/tags")
	b.rep.section(fmt.Sprintf("re-run of registry replicate over %d tags with nothing changed (HEADs only)", tags))
	b.durRow("re-run, nothing to copy", again, 0, 2*time.Second)
	b.maxRatePhase(toNora)
	b.printReport()
}

// maxRatePhase pushes a 480 MiB image to a registry whose
// [[replicate.push]] target is to, capped at 8 MiB/s, and times how long
// the image takes to arrive: about 60 s at the cap.
func (b *benchRun) maxRatePhase(to *benchProc) {
	const rate, size = 8 << 20, 480 << 20
	dir := b.dataDir("repl-rate")
	src := b.startProcWith(dir, fmt.Sprintf(`[storage]
driver = "filesystem"
root = %q

[[replicate.push]]
name = "capped"
url = %q
insecure = true
max_rate = "8MiB/s"
`, filepath.Join(dir, "data"), to.base))
	b.rep.section("continuous replication ([[replicate.push]]) of a 480 MiB image with max_rate = \"8MiB/s\": the rate achieved vs the cap (ceiling)")
	img := newMirrorImage(7000, size)
	stop := src.watchRSS()
	if err := b.pushBigImage(src.base, "bench/capped", "v1", img); err != nil {
		b.t.Fatal(err)
	}
	t0 := time.Now()
	for {
		if _, _, err := b.hc.do(http.MethodHead, to.base+"/v2/bench/capped/manifests/v1", http.Header{"Accept": {benchManifestType}}, nil, 0, http.StatusOK); err == nil {
			break
		}
		if time.Since(t0) > 5*time.Minute {
			b.t.Fatalf("the image did not arrive in 5 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(t0)
	sampled, hwm := stop()
	got := float64(img.size()) / took.Seconds()
	b.rep.add("rate achieved over "+fmtDur(float64(took)), got, rate, fmtMBps, "within 5% of the cap", got <= 1.05*rate && got >= 0.95*rate)
	b.memRow("  peak RSS of the replicating server", max(sampled, hwm), 64<<20)
}

// replicate runs `registry replicate` with args against the registry of
// config, and returns its wall time and peak RSS.
func (b *benchRun) replicate(config string, args ...string) (time.Duration, int64) {
	cmd := exec.Command(b.bin, append([]string{"replicate", "--config", config}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		b.t.Fatalf("registry replicate %v: %v\n%s", args, err, out.String())
	}
	took := time.Since(t0)
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10 // KiB on Linux
	}
	return took, rss
}
