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
