package storage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// testDriver is the conformance suite every Driver runs, in the manner of
// distribution's testsuites: a driver's test file calls it with a
// constructor returning an empty driver, and each subtest gets its own.
// Keys are slash-separated and directory-like, as Store produces them.
func testDriver(t *testing.T, newDriver func(t *testing.T) Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d Driver)
	}{
		{"MissingKey", testDriverMissingKey},
		{"WriteCommitRead", testDriverWriteCommitRead},
		{"WriterAtZeroReplaces", testDriverWriterAtZeroReplaces},
		{"WriterAtOffset", testDriverWriterAtOffset},
		{"WriterManyWrites", testDriverWriterManyWrites},
		{"CloseWithoutCommit", testDriverCloseWithoutCommit},
		{"ReaderOffset", testDriverReaderOffset},
		{"Move", testDriverMove},
		{"MoveMissing", testDriverMoveMissing},
		{"MoveWholeObjects", testDriverMoveWholeObjects},
		{"Delete", testDriverDelete},
		{"Walk", testDriverWalk},
		{"LargeObject", testDriverLargeObject},
		{"ConcurrentWriters", testDriverConcurrentWriters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newDriver(t)) })
	}
}

// putObject writes data at key from offset 0 and commits it.
func putObject(t *testing.T, d Driver, key string, data []byte) {
	t.Helper()
	w, err := d.Writer(t.Context(), key, 0)
	if err != nil {
		t.Fatalf("Writer(%q, 0) = %v", key, err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write(%q) = %v", key, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit(%q) = %v", key, err)
	}
}

// readObject returns the bytes of key from offset.
func readObject(t *testing.T, d Driver, key string, offset int64) []byte {
	t.Helper()
	rc, err := d.Reader(t.Context(), key, offset)
	if err != nil {
		t.Fatalf("Reader(%q, %d) = %v", key, offset, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("ReadAll(%q) = %v", key, err)
	}
	return data
}

// wantObject checks that key holds exactly want, by Reader and by Stat.
func wantObject(t *testing.T, d Driver, key string, want []byte) {
	t.Helper()
	if got := readObject(t, d, key, 0); !bytes.Equal(got, want) {
		t.Fatalf("Reader(%q) = %d bytes %.16q…, want %d bytes %.16q…", key, len(got), got, len(want), want)
	}
	size, err := d.Stat(t.Context(), key)
	if err != nil || size != int64(len(want)) {
		t.Fatalf("Stat(%q) = %d, %v; want %d, nil", key, size, err, len(want))
	}
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func testDriverMissingKey(t *testing.T, d Driver) {
	ctx := t.Context()
	if rc, err := d.Reader(ctx, "missing/key", 0); !errors.Is(err, ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Reader(missing) = %v, want ErrNotFound", err)
	}
	if rc, err := d.Reader(ctx, "missing/key", 10); !errors.Is(err, ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Reader(missing, 10) = %v, want ErrNotFound", err)
	}
	if _, err := d.Stat(ctx, "missing/key"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
	}
	// A directory-like prefix of real keys is not itself a key.
	putObject(t, d, "dir/sub/object", []byte("x"))
	if _, err := d.Stat(ctx, "dir/sub/obj"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(dir/sub/obj) = %v, want ErrNotFound", err)
	}
}

func testDriverWriteCommitRead(t *testing.T, d Driver) {
	for _, size := range []int{0, 1, 4095, 4096, 1 << 20} {
		key := fmt.Sprintf("objects/size-%d", size)
		data := randomBytes(uint64(size), size)
		putObject(t, d, key, data)
		wantObject(t, d, key, data)
	}
}

func testDriverWriterAtZeroReplaces(t *testing.T, d Driver) {
	putObject(t, d, "replace/me", bytes.Repeat([]byte("old"), 100))
	putObject(t, d, "replace/me", []byte("new"))
	wantObject(t, d, "replace/me", []byte("new"))
}

func testDriverWriterAtOffset(t *testing.T, d Driver) {
	ctx := t.Context()
	first := randomBytes(1, 100)
	putObject(t, d, "append/key", first)

	w, err := d.Writer(ctx, "append/key", 60)
	if err != nil {
		t.Fatalf("Writer(append/key, 60) = %v", err)
	}
	defer w.Close()
	tail := []byte("0123456789")
	if n, err := w.Write(tail); n != len(tail) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(tail))
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Commit = %v, want nil", err)
	}
	wantObject(t, d, "append/key", append(slices.Clip(first[:60]), tail...))

	// Appending at the exact end keeps everything.
	w, err = d.Writer(ctx, "append/key", 70)
	if err != nil {
		t.Fatalf("Writer(append/key, 70) = %v", err)
	}
	defer w.Close()
	w.Write([]byte("!"))
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	wantObject(t, d, "append/key", append(append(slices.Clip(first[:60]), tail...), '!'))
}

// testDriverWriterManyWrites checks that a writer fed in small and large
// pieces, as io.Copy and chunked uploads do, stores them in order.
func testDriverWriterManyWrites(t *testing.T, d Driver) {
	data := randomBytes(7, 3<<20+123)
	w, err := d.Writer(t.Context(), "pieces/key", 0)
	if err != nil {
		t.Fatalf("Writer = %v", err)
	}
	defer w.Close()
	for rest, step := data, 1; len(rest) > 0; step = step*3 + 1 {
		n := min(step, len(rest))
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatalf("Write = %v", err)
		}
		rest = rest[n:]
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	wantObject(t, d, "pieces/key", data)
}

// testDriverCloseWithoutCommit checks Writer.Close's documented contract:
// without Commit, written bytes may or may not persist, but Close
// succeeds, never leaves anything but a prefix of what was written, and
// the key stays writable.
func testDriverCloseWithoutCommit(t *testing.T, d Driver) {
	ctx := t.Context()
	data := randomBytes(3, 1000)
	w, err := d.Writer(ctx, "uncommitted/key", 0)
	if err != nil {
		t.Fatalf("Writer = %v", err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatalf("Close without Commit = %v, want nil", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	rc, err := d.Reader(ctx, "uncommitted/key", 0)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		t.Fatalf("Reader after uncommitted Close = %v, want data or ErrNotFound", err)
	default:
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.HasPrefix(data, got) {
			t.Errorf("Reader after uncommitted Close = %d bytes, %v; want a prefix of the %d written", len(got), err, len(data))
		}
	}
	putObject(t, d, "uncommitted/key", []byte("after"))
	wantObject(t, d, "uncommitted/key", []byte("after"))
}

func testDriverReaderOffset(t *testing.T, d Driver) {
	data := randomBytes(4, 5000)
	putObject(t, d, "offset/key", data)
	for _, off := range []int64{0, 1, 4096, 4999, 5000} {
		if got := readObject(t, d, "offset/key", off); !bytes.Equal(got, data[off:]) {
			t.Errorf("Reader(offset/key, %d) = %d bytes, want %d matching", off, len(got), len(data)-int(off))
		}
	}
}

func testDriverMove(t *testing.T, d Driver) {
	ctx := t.Context()
	putObject(t, d, "move/src", []byte("source"))
	if err := d.Move(ctx, "move/src", "move/deep/dir/dst"); err != nil {
		t.Fatalf("Move to new key = %v", err)
	}
	wantObject(t, d, "move/deep/dir/dst", []byte("source"))
	if _, err := d.Stat(ctx, "move/src"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(source after Move) = %v, want ErrNotFound", err)
	}

	putObject(t, d, "move/src2", []byte("second"))
	if err := d.Move(ctx, "move/src2", "move/deep/dir/dst"); err != nil {
		t.Fatalf("Move onto existing key = %v", err)
	}
	wantObject(t, d, "move/deep/dir/dst", []byte("second"))
}

func testDriverMoveMissing(t *testing.T, d Driver) {
	ctx := t.Context()
	putObject(t, d, "move/target", []byte("kept"))
	if err := d.Move(ctx, "move/missing", "move/target"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Move(missing source) = %v, want ErrNotFound", err)
	}
	wantObject(t, d, "move/target", []byte("kept"))
}

// testDriverMoveWholeObjects moves versions of an object onto one key
// while readers read it: each read must be one whole version.
func testDriverMoveWholeObjects(t *testing.T, d Driver) {
	ctx := t.Context()
	const versions = 20
	const size = 64 << 10
	version := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, size+i) }
	putObject(t, d, "whole/target", version(0))

	// A reader opened before a Move keeps reading the object it opened.
	rc, err := d.Reader(ctx, "whole/target", 0)
	if err != nil {
		t.Fatalf("Reader = %v", err)
	}
	defer rc.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := d.Reader(ctx, "whole/target", 0)
				if err != nil {
					errs <- fmt.Errorf("Reader during Move = %v", err)
					return
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil {
					errs <- fmt.Errorf("ReadAll during Move = %v", err)
					return
				}
				i := len(got) - size
				if i < 0 || i >= versions || !bytes.Equal(got, version(i)) {
					errs <- fmt.Errorf("read a partial or mixed object of %d bytes", len(got))
					return
				}
			}
		})
	}
	for i := 1; i < versions; i++ {
		src := fmt.Sprintf("whole/staging/%d", i)
		putObject(t, d, src, version(i))
		if err := d.Move(ctx, src, "whole/target"); err != nil {
			t.Errorf("Move(%s) = %v", src, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantObject(t, d, "whole/target", version(versions-1))

	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, version(0)) {
		t.Errorf("reader opened before Move = %d bytes, %v; want the %d bytes of the old object", len(got), err, size)
	}
}

func testDriverDelete(t *testing.T, d Driver) {
	ctx := t.Context()
	if err := d.Delete(ctx, "delete/missing"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	putObject(t, d, "delete/key", []byte("bye"))
	putObject(t, d, "delete/other", []byte("stay"))
	if err := d.Delete(ctx, "delete/key"); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if _, err := d.Stat(ctx, "delete/key"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(deleted) = %v, want ErrNotFound", err)
	}
	if err := d.Delete(ctx, "delete/key"); err != nil {
		t.Errorf("Delete twice = %v, want nil", err)
	}
	wantObject(t, d, "delete/other", []byte("stay"))
}

// testDriverWalk checks that Walk lists every key under a directory-like
// prefix, nested ones included, with sizes, and nothing else: not a
// sibling that shares the prefix's characters ("walk/inside" is not under
// "walk/in").
func testDriverWalk(t *testing.T, d Driver) {
	ctx := t.Context()
	want := map[string]int64{
		"walk/in/a":            1,
		"walk/in/b":            22,
		"walk/in/sub/c":        333,
		"walk/in/sub/deeper/d": 0,
	}
	for key, size := range want {
		putObject(t, d, key, make([]byte, size))
	}
	for _, key := range []string{"walk/inside", "walk/out/e", "other/in/f"} {
		putObject(t, d, key, []byte("not listed"))
	}
	for _, prefix := range []string{"walk/in", "walk/in/"} {
		got := map[string]int64{}
		err := d.Walk(ctx, prefix, func(key string, size int64) error {
			if _, dup := got[key]; dup {
				t.Errorf("Walk(%q) listed %q twice", prefix, key)
			}
			got[key] = size
			return nil
		})
		if err != nil {
			t.Fatalf("Walk(%q) = %v", prefix, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Walk(%q) = %v, want %v", prefix, got, want)
		}
	}

	var n int
	err := d.Walk(ctx, "walk/nothing-here", func(string, int64) error { n++; return nil })
	if err != nil || n != 0 {
		t.Errorf("Walk(missing prefix) = %d keys, %v; want 0, nil", n, err)
	}

	// An error from fn stops the walk and is returned.
	stop := errors.New("stop")
	n = 0
	err = d.Walk(ctx, "walk/in", func(string, int64) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Walk with failing fn = %d calls, %v; want 1, %v", n, err, stop)
	}
}

// chachaReader streams deterministic pseudo-random bytes without holding
// them.
type chachaReader struct {
	src  *rand.ChaCha8
	left int64
}

func (r *chachaReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, _ := r.src.Read(p)
	r.left -= int64(n)
	return n, nil
}

// heapPeak samples the heap until stop is called, which returns the
// highest in-use heap seen.
func heapPeak() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		sample()
		return peak
	}
}

// testDriverLargeObject streams 64 MiB in and out, checking the bytes by
// sha256 and that the driver never holds the object in memory.
func testDriverLargeObject(t *testing.T, d Driver) {
	if testing.Short() {
		t.Skip("64 MiB object in -short mode")
	}
	const size = 64 << 20
	const heapSlack = 40 << 20 // well under the object's size
	ctx := t.Context()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stopSampling := heapPeak()

	src := &chachaReader{src: rand.NewChaCha8([32]byte{64}), left: size}
	in := sha256.New()
	w, err := d.Writer(ctx, "large/object", 0)
	if err != nil {
		t.Fatalf("Writer = %v", err)
	}
	defer w.Close()
	buf := make([]byte, 1<<20)
	if n, err := io.CopyBuffer(onlyWriter{w}, io.TeeReader(src, in), buf); n != size || err != nil {
		t.Fatalf("copy into Writer = %d, %v; want %d, nil", n, err, size)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if got, err := d.Stat(ctx, "large/object"); got != size || err != nil {
		t.Fatalf("Stat = %d, %v; want %d, nil", got, err, size)
	}

	rc, err := d.Reader(ctx, "large/object", 0)
	if err != nil {
		t.Fatalf("Reader = %v", err)
	}
	defer rc.Close()
	out := sha256.New()
	if n, err := io.CopyBuffer(out, onlyReader{rc}, buf); n != size || err != nil {
		t.Fatalf("copy from Reader = %d, %v; want %d, nil", n, err, size)
	}
	if !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
		t.Fatalf("sha256 of read object = %x, want %x", out.Sum(nil), in.Sum(nil))
	}

	// Offset reads land on the right byte of a large object too.
	tail := readObject(t, d, "large/object", size-1000)
	wantTail := make([]byte, 1000)
	regen := &chachaReader{src: rand.NewChaCha8([32]byte{64}), left: size}
	io.CopyN(io.Discard, regen, size-1000)
	io.ReadFull(regen, wantTail)
	if !bytes.Equal(tail, wantTail) {
		t.Errorf("Reader(large/object, %d) returned the wrong bytes", size-1000)
	}

	if peak := stopSampling(); peak > base.HeapInuse+heapSlack {
		t.Errorf("heap in use peaked at %d MiB over a %d MiB baseline streaming a %d MiB object; the driver holds it in memory",
			peak>>20, base.HeapInuse>>20, size>>20)
	}
}

// onlyWriter and onlyReader hide ReaderFrom and WriterTo so the test's
// copy goes through Write and Read, as network streams do.
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

func testDriverConcurrentWriters(t *testing.T, d Driver) {
	const writers = 16
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			key := fmt.Sprintf("concurrent/%02d/object", i)
			data := randomBytes(uint64(100+i), 200<<10+i)
			w, err := d.Writer(ctx, key, 0)
			if err != nil {
				t.Errorf("Writer(%s) = %v", key, err)
				return
			}
			defer w.Close()
			for chunk := range slices.Chunk(data, 8<<10) {
				if _, err := w.Write(chunk); err != nil {
					t.Errorf("Write(%s) = %v", key, err)
					return
				}
			}
			if err := w.Commit(); err != nil {
				t.Errorf("Commit(%s) = %v", key, err)
			}
		})
	}
	wg.Wait()
	for i := range writers {
		key := fmt.Sprintf("concurrent/%02d/object", i)
		wantObject(t, d, key, randomBytes(uint64(100+i), 200<<10+i))
	}
}
