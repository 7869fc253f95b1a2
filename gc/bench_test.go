package gc

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// BenchmarkPass measures one GC pass, plan and apply, over a store of
// NORA_GC_BENCH_MANIFESTS manifests (default 2,000) with two blobs each in
// 100 repositories, half of them untagged, so the pass deletes half. It
// reports the pass's duration and the process's peak RSS during it, file
// pages (the mapped metadata) included. The figure is
//
//	NORA_GC_BENCH_MANIFESTS=100000 go test -run '^$' -bench Pass -benchtime 1x -timeout 30m ./gc
//
// (100,000 manifests, 200,000 blobs); filling that store takes minutes.
func BenchmarkPass(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("NORA_GC_BENCH_MANIFESTS")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		b.StopTimer()
		root := b.TempDir()
		s, err := storage.Open(b.Context(), storage.Config{Driver: "filesystem", Root: root})
		if err != nil {
			b.Fatal(err)
		}
		fill(b, s, n)
		// A fresh process, as after a restart: what filling left in
		// memory, heap and mapped file pages, is not the pass's.
		s.Close()
		s = openStoreAt(b, root)
		debug.FreeOSMemory()
		resetPeakRSS()
		stop := watchRSS()
		b.StartTimer()
		start := time.Now()
		res, err := Apply(b.Context(), s, mustPlan(b, s))
		b.StopTimer()
		anon, file := stop()
		b.ReportMetric(float64(anon)/(1<<20), "peak-anon-MiB")
		b.ReportMetric(float64(file)/(1<<20), "peak-file-MiB")
		if err != nil || res.Manifests != n/2 || res.Blobs != n {
			b.Fatalf("Apply = %+v, %v, want %d manifests and %d blobs", res, err, n/2, n)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/pass")
		b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
		b.StartTimer()
	}
}

func openStoreAt(b *testing.B, root string) *storage.Store {
	s, err := storage.Open(b.Context(), storage.Config{Driver: "filesystem", Root: root})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func mustPlan(b *testing.B, s *storage.Store) *PassPlan {
	p, err := Plan(b.Context(), s, Options{DeleteUntagged: true, Now: time.Now().Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// fill pushes n manifests of two small blobs each, from 16 goroutines so
// metadata commits share disk syncs.
func fill(b testing.TB, s *storage.Store, n int) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				repo := fmt.Sprintf("team/app%03d", i%100)
				d1 := putBlob(b, s, repo, []byte(fmt.Sprintf("config %d", i)))
				d2 := putBlob(b, s, repo, []byte(fmt.Sprintf("layer %d", i)))
				var tags []string
				if i%2 == 0 {
					tags = []string{fmt.Sprintf("v%d", i)}
				}
				putManifest(b, s, repo, fmt.Sprint(i), storage.Manifest{Blobs: []digest.Digest{d1, d2}}, tags...)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// resetPeakRSS resets the kernel's high-water mark of this process's RSS.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns VmHWM in bytes, or 0 off Linux.
func peakRSS() int64 { return procStatus("VmHWM") }

// procStatus returns a field of /proc/self/status in bytes, or 0 off
// Linux.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// watchRSS samples this process's anonymous and file-backed RSS every
// 20 ms until stop is called, which returns the largest of each: the
// heap and the pages of the metadata file mapped by bbolt.
func watchRSS() (stop func() (anon, file int64)) {
	quit := make(chan struct{})
	res := make(chan [2]int64)
	go func() {
		var peak [2]int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			peak[0] = max(peak[0], procStatus("RssAnon"))
			peak[1] = max(peak[1], procStatus("RssFile"))
			select {
			case <-tick.C:
			case <-quit:
				res <- peak
				return
			}
		}
	}()
	return func() (int64, int64) {
		close(quit)
		p := <-res
		return p[0], p[1]
	}
}
