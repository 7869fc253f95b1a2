//go:build bench && linux

package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Sizes of the store the start-up benchmark fills: 20,000 repositories of
// one image each, tagged five times.
const (
	benchStartRepos = 20000
	benchStartTags  = 5
)

// TestBenchStartup measures process start to the first 200 on /v2/, the
// way a supervisor sees it (exec, then GET /v2/ every millisecond), on an
// empty data directory and on one holding 20,000 repositories and 100,000
// tags, next to a bare net/http server built the same way
// (testdata/benchceiling); and on a new data directory, which the first
// start creates. Starts alternate between the four, 7 each, and the median
// is reported. Filling the store takes about a minute; with
// NORA_BENCH_STARTUP_DIR set, the filled data directory is kept there and
// reused by later runs.
func TestBenchStartup(t *testing.T) {
	b := newBenchRun(t)
	ceil := b.goBuild("./testdata/benchceiling", "benchceiling")
	full := os.Getenv("NORA_BENCH_STARTUP_DIR")
	if full == "" {
		full = b.dataDir("full")
	} else if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(full, "data", "metadata.db")); err != nil {
		srv := b.startProc(full)
		b.fillRepos(srv)
		srv.stop()
	}
	st, err := os.Stat(filepath.Join(full, "data", "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}

	// The empty store is made by a first start, as a supervisor's
	// restarts find it; creating metadata.db is timed on its own.
	emptyDir := b.dataDir("empty")
	b.startProc(emptyDir).stop()

	const starts = 7
	var bare, fresh, empty, filled []time.Duration
	for range starts {
		addr := benchFreeAddr(t)
		p := b.launch(addr, exec.Command(ceil, addr))
		bare = append(bare, p.firstOK)
		p.stop()
		p = b.startProc(b.dataDir("fresh"))
		fresh = append(fresh, p.firstOK)
		p.stop()
		p = b.startProc(emptyDir)
		empty = append(empty, p.firstOK)
		p.stop()
		p = b.startProc(full)
		filled = append(filled, p.firstOK)
		p.stop()
	}
	for _, r := range []struct {
		name string
		ds   []time.Duration
	}{{"bare handler", bare}, {"fresh", fresh}, {"empty", empty}, {"filled", filled}} {
		t.Logf("exec → first 200, %s: %s", r.name, benchRange(r.ds))
	}
	b.rep.section(fmt.Sprintf("start-up: exec → first 200 on /v2/, polled every 1 ms (median of %d starts; the ceiling is a bare net/http server)", starts))
	b.durRow("empty store", benchMedian(empty), benchMedian(bare), 20*time.Millisecond)
	b.durRow(fmt.Sprintf("%d repositories, %d tags (metadata.db %s)", benchStartRepos, benchStartRepos*benchStartTags, fmtMB(float64(st.Size()))),
		benchMedian(filled), benchMedian(bare), 50*time.Millisecond)
	b.durRow("new data directory (creates metadata.db)", benchMedian(fresh), benchMedian(bare), 0)
	b.printReport()
}

// fillRepos pushes benchStartRepos repositories from 8 clients: each
// mounts one shared layer, pushes its own config and tags its manifest
// benchStartTags times.
func (b *benchRun) fillRepos(srv *benchProc) {
	t0 := time.Now()
	seed := newBenchImage(4242, 1024)
	if err := b.pushBlobs(srv.base, "fill/seed", seed); err != nil {
		b.t.Fatal(err)
	}
	layer := benchDigest(seed.layer)
	err := benchParallel(8, benchStartRepos, func(_, i int) error {
		repo := fmt.Sprintf("team-%03d/app-%05d", i%200, i)
		mount := srv.base + "/v2/" + repo + "/blobs/uploads/?mount=" + layer + "&from=fill/seed"
		if _, _, err := b.hc.do(http.MethodPost, mount, nil, nil, 0, http.StatusCreated); err != nil {
			return err
		}
		config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{"Labels":{"n":"%d"}},"rootfs":{"type":"layers","diff_ids":[%q]}}`, i, layer)
		u := srv.base + "/v2/" + repo + "/blobs/uploads/?digest=" + benchDigest(config)
		if _, _, err := b.hc.do(http.MethodPost, u, benchOctet, strings.NewReader(string(config)), int64(len(config)), http.StatusCreated); err != nil {
			return err
		}
		manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
			`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
			benchManifestType, benchDigest(config), len(config), layer, len(seed.layer))
		for k := range benchStartTags {
			if err := b.putManifest(srv.base, repo, fmt.Sprintf("1.%d", k), manifest); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.t.Fatalf("filling the store: %v", err)
	}
	b.t.Logf("filled %d repositories with %d tags in %s", benchStartRepos, benchStartRepos*benchStartTags, time.Since(t0).Round(time.Second))
}

// benchRange formats the median and the range of ds, which it sorts.
func benchRange(ds []time.Duration) string {
	m := benchMedian(ds)
	return fmt.Sprintf("median %s (%s–%s)", fmtDur(float64(m)), fmtDur(float64(ds[0])), fmtDur(float64(ds[len(ds)-1])))
}
