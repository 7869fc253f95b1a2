//go:build bench && linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/nora-registry/nora/storage/s3test"
)

// TestBenchS3 measures the registry with blobs on S3 (versitygw on this
// machine) against minio-go's own PutObject and GetObject to the same
// server in the same run: the ceiling for any S3 client. It takes a few
// minutes and prints its own report.
func TestBenchS3(t *testing.T) {
	b := newBenchRun(t)
	s3 := s3test.Start(t)
	dir := b.dataDir("s3")
	srv := b.startProcWith(dir, s3.TOML(filepath.Join(dir, "data")))
	// With redirects on, a chunked blob is composed into one object in
	// the background; its own prefix keeps it apart from srv's.
	rdir := b.dataDir("s3-redirect")
	rsrv := b.startProcWith(rdir, s3.TOML(filepath.Join(rdir, "data"), `prefix = "redirect"`, "redirect = true"))
	mc := s3.Client()

	const size, runs = 1 << 30, 3
	b.rep.section(fmt.Sprintf("S3 backend (versitygw): 1 GiB blob, median of %d runs; ceiling: minio-go PutObject/GetObject", runs))
	var push, pull [2][]float64 // [0] registry, [1] minio-go
	var peak int64
	seed := int64(9000)
	for run := range runs {
		for k := range 2 {
			who := (run + k) % 2
			seed++
			bb := newBenchBlob(seed, size)
			syscall.Sync()
			if who == 0 {
				repo := fmt.Sprintf("bench/s3-%d", run)
				stop := srv.watchRSS()
				push[0] = append(push[0], b.timed(size, "push via registry", func() error { return b.pushMono(srv.base, repo, bb) }))
				_, h := stop()
				peak = max(peak, h)
				pull[0] = append(pull[0], b.timed(size, "pull via registry", func() error { return b.pull(srv.base, repo, bb) }))
				continue
			}
			name := fmt.Sprintf("ceiling/%d", run)
			push[1] = append(push[1], b.timed(size, "minio-go PutObject", func() error {
				_, err := mc.PutObject(context.Background(), s3.Bucket, name, bb.reader(0, size), size, minio.PutObjectOptions{})
				return err
			}))
			pull[1] = append(pull[1], b.timed(size, "minio-go GetObject", func() error {
				obj, err := mc.GetObject(context.Background(), s3.Bucket, name, minio.GetObjectOptions{})
				if err != nil {
					return err
				}
				defer obj.Close()
				n, err := io.Copy(io.Discard, obj)
				if err == nil && n != size {
					err = fmt.Errorf("read %d bytes, want %d", n, size)
				}
				return err
			}))
			mc.RemoveObject(context.Background(), s3.Bucket, name, minio.RemoveObjectOptions{})
		}
	}
	t.Logf("S3 push 1 GiB, MB/s per run: registry %s, minio-go %s", benchMBs(push[0]), benchMBs(push[1]))
	t.Logf("S3 pull 1 GiB, MB/s per run: registry %s, minio-go %s", benchMBs(pull[0]), benchMBs(pull[1]))
	s3Row := func(name string, v, ceil float64) {
		b.rep.add(name, v, ceil, fmtMBps, "≥ 80% of minio-go", v >= 0.8*ceil)
	}
	s3Row("push 1 GiB through the registry", benchMedianF(push[0]), benchMedianF(push[1]))
	s3Row("pull 1 GiB through the registry", benchMedianF(pull[0]), benchMedianF(pull[1]))
	b.memRow("peak RSS (VmHWM) pushing 1 GiB to S3", peak, 100<<20)

	// Clients that name the digest only after the bytes (docker, podman,
	// ggcr: POST, PATCH, PUT): the blob stays where its upload wrote it.
	// On a shared machine the rate drifts from minute to minute, so each
	// run is measured next to a minio-go PutObject of its own, in
	// alternating order, and the ratio reported is the median of the runs'.
	for _, mode := range []struct {
		name  string
		chunk int64
		srv   *benchProc
	}{
		{"one PATCH, then PUT ?digest=", size, srv},
		{"one PATCH of unknown length (docker)", -1, srv},
		{"16 MiB chunks", 16 << 20, srv},
		{"16 MiB chunks, redirect = true", 16 << 20, rsrv},
	} {
		var ratios, rates, ceils, composed []float64
		var h int64
		for run := range runs {
			var v, ceil float64
			for k := range 2 {
				seed++
				bb := newBenchBlob(seed, size)
				syscall.Sync()
				if (run+k)%2 == 1 {
					ceil = b.timed(size, "minio-go PutObject", func() error {
						_, err := mc.PutObject(context.Background(), s3.Bucket, "ceiling/chunked", bb.reader(0, size), size, minio.PutObjectOptions{})
						return err
					})
					mc.RemoveObject(context.Background(), s3.Bucket, "ceiling/chunked", minio.RemoveObjectOptions{})
					continue
				}
				stop := mode.srv.watchRSS()
				repo := fmt.Sprintf("bench/s3-chunked-%d", seed)
				v = b.timed(size, "push via registry, "+mode.name, func() error {
					return b.pushChunked(mode.srv.base, repo, bb, mode.chunk)
				})
				_, hw := stop()
				h = max(h, hw)
				if mode.srv == rsrv {
					// The next run starts once the copy is done, so that
					// it is not measured against it.
					composed = append(composed, b.waitRedirect(rsrv.base, repo, bb))
				}
			}
			ratios, rates, ceils = append(ratios, v/ceil), append(rates, v), append(ceils, ceil)
		}
		t.Logf("S3 push 1 GiB, %s: MB/s per run %s, ratio to the minio-go run next to it %s", mode.name, benchMBs(rates), fmtRatios(ratios))
		b.rep.add("push 1 GiB, "+mode.name, benchMedianF(rates), benchMedianF(ceils), fmtMBps,
			"≥ 90% of minio-go, median of runs' ratios", benchMedianF(ratios) >= 0.9)
		b.memRow("  peak RSS (VmHWM)", h, 100<<20)
		if composed != nil {
			b.rep.add("  GET redirects after (compose_delay 10s, then the copy)", benchMedianF(composed), 0, fmtDur, "", false)
		}
	}
	rsrv.stop()

	const n, small = 16, 100 << 20
	blobs := make([]benchBlob, n)
	for i := range blobs {
		blobs[i] = newBenchBlob(20000+int64(i), small)
	}
	syscall.Sync()
	stop := srv.watchRSS()
	agg := b.timed(n*small, "concurrent uploads to S3", func() error {
		return benchParallel(n, n, func(_, i int) error {
			return b.pushMono(srv.base, fmt.Sprintf("bench/s3-many-%02d", i), blobs[i])
		})
	})
	_, h := stop()
	b.rep.add(fmt.Sprintf("push %d × 100 MB at once to S3, aggregate", n), agg, 0, fmtMBps, "", false)
	b.memRow(fmt.Sprintf("peak RSS (VmHWM) during %d uploads to S3", n), h, 100<<20)
	srv.stop()
	b.printReport()
}

func fmtRatios(rs []float64) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%.2f", r))
	}
	return strings.Join(out, " ")
}

// waitRedirect waits until a GET of blob bb answers 307, as it does once
// the blob is one object, and returns how long that took.
func (b *benchRun) waitRedirect(base, repo string, bb benchBlob) float64 {
	t0 := time.Now()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for deadline := t0.Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/blobs/"+bb.digest, nil)
		req.Header.Set("Range", "bytes=0-0")
		resp, err := hc.Do(req)
		if err != nil {
			b.t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTemporaryRedirect {
			return float64(time.Since(t0))
		}
	}
	b.t.Fatalf("GET of %s in %s: no redirect within 5 minutes", bb.digest, repo)
	return 0
}
