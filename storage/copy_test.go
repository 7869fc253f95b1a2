package storage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestCopyHashed copies bodies that arrive in every shape a network gives
// (one byte at a time, half reads, the data with its EOF, a full wait
// buffer then a trickle, a read error) and checks the bytes, the hash and
// the count.
func TestCopyHashed(t *testing.T) {
	data := make([]byte, 3*256<<10+waitBufferSize+7)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	boom := errors.New("connection reset")
	cases := []struct {
		name    string
		body    func() io.Reader
		want    int // bytes copied
		wantErr error
	}{
		{"whole", func() io.Reader { return bytes.NewReader(data) }, len(data), nil},
		{"one byte a read", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:70000])) }, 70000, nil},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }, len(data), nil},
		{"EOF with the data", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) }, len(data), nil},
		{"a wait buffer, then a trickle", func() io.Reader {
			return io.MultiReader(bytes.NewReader(data[:waitBufferSize]), iotest.OneByteReader(bytes.NewReader(data[waitBufferSize:waitBufferSize+100])))
		}, waitBufferSize + 100, nil},
		{"error mid-body", func() io.Reader {
			return io.MultiReader(bytes.NewReader(data[:300000]), iotest.ErrReader(boom))
		}, 300000, boom},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			h := sha256.New()
			n, err := copyHashed(&out, h, c.body())
			if !errors.Is(err, c.wantErr) || n != int64(c.want) {
				t.Fatalf("copyHashed = %d, %v, want %d, %v", n, err, c.want, c.wantErr)
			}
			want := sha256.Sum256(data[:c.want])
			if !bytes.Equal(out.Bytes(), data[:c.want]) || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("copyHashed wrote or hashed other bytes than it read")
			}
		})
	}
}

// offsetWriter records where each write ended.
type offsetWriter struct {
	n    int64
	ends []int64
}

func (w *offsetWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	w.ends = append(w.ends, w.n)
	return len(p), nil
}

// TestCopyHashedAlignsWrites: after a first read of the few KB that came
// with the request's headers, every large write ends on a page boundary,
// so the kernel never zeroes part of a page it is about to fill.
func TestCopyHashedAlignsWrites(t *testing.T) {
	data := make([]byte, 1<<20)
	const first = 3824 // what a 1 MiB push's first body read returned
	var w offsetWriter
	if _, err := copyHashed(&w, sha256.New(), io.MultiReader(bytes.NewReader(data[:first]), bytes.NewReader(data[first:]))); err != nil {
		t.Fatal(err)
	}
	if len(w.ends) < 3 || w.ends[0] != first {
		t.Fatalf("copyHashed wrote up to %v, want a first write of %d bytes and more after it", w.ends, first)
	}
	for _, end := range w.ends[1 : len(w.ends)-1] {
		if end%writeAlign != 0 {
			t.Errorf("copyHashed wrote up to %v: %d is not on a page boundary", w.ends, end)
		}
	}
}
