//go:build bench && linux

package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

// benchHTTP is the load client: one keep-alive transport for every phase,
// with buffers large enough that the client is not the bottleneck of a
// 1 GiB transfer.
type benchHTTP struct{ c *http.Client }

func newBenchHTTP() *benchHTTP {
	return &benchHTTP{c: &http.Client{Transport: &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
	}}}
}

// do sends a request with body of size bytes (-1 unknown), reads and
// closes the response body and checks the status is want.
func (h *benchHTTP) do(method, url string, hdr http.Header, body io.Reader, size int64, want int) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Body = io.NopCloser(body) // keeps the generator's WriteTo visible to net/http
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp, nil, err
	}
	if resp.StatusCode != want {
		return resp, data, fmt.Errorf("%s %s = %s, want %d: %.300s", method, url, resp.Status, want, data)
	}
	return resp, data, nil
}

var benchOctet = http.Header{"Content-Type": {"application/octet-stream"}}

// benchBlockSize is the period of generated blobs.
const benchBlockSize = 1 << 20

// benchBlock is 1 MiB of random bytes, the pattern of every generated blob.
var benchBlock = sync.OnceValue(func() []byte {
	b := make([]byte, benchBlockSize)
	rand.NewChaCha8([32]byte{'n', 'o', 'r', 'a'}).Read(b)
	return b
})

// benchBlob is a deterministic blob of any size that is never held in
// memory: benchBlock repeated, each block's first 16 bytes replaced by the
// blob's seed and the block's index, so that no two blobs and no two blocks
// are alike and nothing can deduplicate them.
type benchBlob struct {
	seed, size int64
	digest     string
}

// newBenchBlob streams the blob once to compute its digest.
func newBenchBlob(seed, size int64) benchBlob {
	bb := benchBlob{seed: seed, size: size}
	h := sha256.New()
	bb.reader(0, size).WriteTo(h)
	bb.digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return bb
}

// reader returns bytes [off, off+n) of the blob.
func (bb benchBlob) reader(off, n int64) *benchBlobReader {
	return &benchBlobReader{seed: bb.seed, off: off, end: off + n}
}

type benchBlobReader struct{ seed, off, end int64 }

// stamp is the head of block i.
func (r *benchBlobReader) stamp(i int64) (s [16]byte) {
	binary.LittleEndian.PutUint64(s[:8], uint64(r.seed))
	binary.LittleEndian.PutUint64(s[8:], uint64(i))
	return s
}

func (r *benchBlobReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	block, n := benchBlock(), 0
	for n < len(p) && r.off < r.end {
		i, in := r.off/benchBlockSize, int(r.off%benchBlockSize)
		m := int(min(int64(len(p)-n), int64(benchBlockSize-in), r.end-r.off))
		copy(p[n:n+m], block[in:in+m])
		if in < 16 {
			s := r.stamp(i)
			copy(p[n:n+m], s[in:])
		}
		n += m
		r.off += int64(m)
	}
	return n, nil
}

// WriteTo writes straight from the pattern, saving a copy per byte.
func (r *benchBlobReader) WriteTo(w io.Writer) (int64, error) {
	block, total := benchBlock(), int64(0)
	for r.off < r.end {
		i, in := r.off/benchBlockSize, int(r.off%benchBlockSize)
		m := int(min(int64(benchBlockSize-in), r.end-r.off))
		var n int
		var err error
		if in < 16 {
			s := r.stamp(i)
			h := min(16-in, m)
			n, err = w.Write(s[in : in+h])
			if err == nil && m > h {
				var n2 int
				n2, err = w.Write(block[in+h : in+m])
				n += n2
			}
		} else {
			n, err = w.Write(block[in : in+m])
		}
		total += int64(n)
		r.off += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// pushMono uploads bb in one POST ?digest=.
func (b *benchRun) pushMono(base, repo string, bb benchBlob) error {
	u := base + "/v2/" + repo + "/blobs/uploads/?digest=" + bb.digest
	_, _, err := b.hc.do(http.MethodPost, u, benchOctet, bb.reader(0, bb.size), bb.size, http.StatusCreated)
	return err
}

// pushChunked uploads bb as POST, one PATCH with Content-Range per chunk,
// and PUT ?digest=; a negative chunk sends one PATCH of unknown length
// with no Content-Range, as docker does.
func (b *benchRun) pushChunked(base, repo string, bb benchBlob, chunk int64) error {
	resp, _, err := b.hc.do(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil, nil, 0, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc := benchResolve(base, resp.Header.Get("Location"))
	if chunk < 0 {
		// As docker sends it: no Content-Range, no Content-Length.
		hdr := http.Header{"Content-Type": {"application/octet-stream"}}
		resp, _, err = b.hc.do(http.MethodPatch, loc, hdr, bb.reader(0, bb.size), -1, http.StatusAccepted)
		if err != nil {
			return err
		}
		loc = benchResolve(base, resp.Header.Get("Location"))
	}
	for off := int64(0); chunk > 0 && off < bb.size; off += chunk {
		n := min(chunk, bb.size-off)
		hdr := http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", off, off+n-1)},
		}
		resp, _, err = b.hc.do(http.MethodPatch, loc, hdr, bb.reader(off, n), n, http.StatusAccepted)
		if err != nil {
			return err
		}
		loc = benchResolve(base, resp.Header.Get("Location"))
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	_, _, err = b.hc.do(http.MethodPut, loc+sep+"digest="+bb.digest, nil, nil, 0, http.StatusCreated)
	return err
}

// pull downloads a blob, discarding the bytes through a 1 MiB buffer.
func (b *benchRun) pull(base, repo string, bb benchBlob) error {
	_, err := b.fetchTimed(base+"/v2/"+repo+"/blobs/"+bb.digest, bb.size)
	return err
}

func benchResolve(base, loc string) string {
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		return loc
	}
	return base + loc
}

// timed returns bytes per second of one call of fn moving n bytes.
func (b *benchRun) timed(n int64, what string, fn func() error) float64 {
	t0 := time.Now()
	if err := fn(); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return float64(n) / time.Since(t0).Seconds()
}

// blobPhase pushes and pulls 1 GiB blobs, monolithic and chunked, against
// the registry and the ceiling and reports medians. The virtual disks this
// runs on are noisy and favour whichever writer comes first or writes bytes
// seen before, so every push has its own content and the two servers take
// turns going first.
func (b *benchRun) blobPhase(srv *benchProc) {
	const size, runs, chunk = 1 << 30, 5, 16 << 20
	b.rep.section(fmt.Sprintf("1 GiB blob, median of %d runs (push: sha256 + write + fsync; pull: from the page cache)", runs))
	seed := int64(1000)
	for _, mode := range []string{"monolithic", "16 MiB chunks"} {
		var push, pull [2][]float64 // [0] registry, [1] ceiling
		var peak, sampled int64
		idle := srv.rss()
		for run := range runs {
			for k := range 2 {
				who := (run + k) % 2
				base, repo := srv.base, fmt.Sprintf("bench/big-%d", run)
				if who == 1 {
					base = b.ceil.base
				}
				seed++
				bb := newBenchBlob(seed, size)
				syscall.Sync()
				var stop func() (int64, int64)
				if who == 0 {
					stop = srv.watchRSS()
				}
				v := b.timed(size, "push", func() error {
					if mode == "monolithic" {
						return b.pushMono(base, repo, bb)
					}
					return b.pushChunked(base, repo, bb, chunk)
				})
				push[who] = append(push[who], v)
				if stop != nil {
					s, h := stop()
					peak, sampled = max(peak, h), max(sampled, s)
				}
				if mode == "monolithic" {
					pull[who] = append(pull[who], b.timed(size, "pull", func() error { return b.pull(base, repo, bb) }))
				}
				b.ceil.forget(bb.digest)
			}
		}
		b.t.Logf("push 1 GiB %s, MB/s per run: registry %s, ceiling %s", mode, benchMBs(push[0]), benchMBs(push[1]))
		b.throughputRow("push 1 GiB, "+mode, benchMedianF(push[0]), benchMedianF(push[1]))
		if len(pull[0]) > 0 {
			b.t.Logf("pull 1 GiB, MB/s per run: registry %s, ceiling %s", benchMBs(pull[0]), benchMBs(pull[1]))
			b.throughputRow("pull 1 GiB", benchMedianF(pull[0]), benchMedianF(pull[1]))
		}
		b.memRow("peak RSS (VmHWM) pushing 1 GiB, "+mode, peak, 48<<20)
		b.rep.add("  largest VmRSS sample − RSS before", float64(sampled-idle), 0, fmtMB, "", false)
	}
}

// concurrentUploadsPhase pushes 32 blobs of 100 MiB at once, for peak
// memory under concurrency and aggregate throughput.
func (b *benchRun) concurrentUploadsPhase(srv *benchProc) {
	const n, size = 32, 100 << 20
	b.rep.section(fmt.Sprintf("%d concurrent monolithic uploads of 100 MiB", n))
	push := func(base string, seed int64) float64 {
		blobs := make([]benchBlob, n)
		benchParallel(2, n, func(_, i int) error { blobs[i] = newBenchBlob(seed+int64(i), size); return nil })
		syscall.Sync()
		defer func() {
			for _, bb := range blobs {
				b.ceil.forget(bb.digest)
			}
		}()
		return b.timed(n*size, "concurrent uploads", func() error {
			return benchParallel(n, n, func(_, i int) error {
				return b.pushMono(base, fmt.Sprintf("bench/many-%02d", i), blobs[i])
			})
		})
	}
	ceil := push(b.ceil.base, 5000)
	idle := srv.rss()
	stop := srv.watchRSS()
	reg := push(srv.base, 6000)
	sampled, peak := stop()
	b.throughputRow(fmt.Sprintf("push %d × 100 MiB at once, aggregate", n), reg, ceil)
	b.memRow(fmt.Sprintf("peak RSS (VmHWM) during %d uploads", n), peak, 48<<20)
	b.rep.add("  largest VmRSS sample − RSS before", float64(sampled-idle), 0, fmtMB, "", false)
}

func benchMedianF(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// benchRates formats rates per second, in run order.
func benchRates(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, " ")
}

// benchMBs formats rates in bytes per second as MB/s, in run order.
func benchMBs(v []float64) string {
	mb := make([]float64, len(v))
	for i, x := range v {
		mb[i] = x / 1e6
	}
	return benchRates(mb)
}
