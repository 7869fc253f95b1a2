package replicate

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestObservers: the progress line ends whether blobs are sent, mounted or
// fail, or nothing moves at all, counting the failed ones' unsent bytes as
// not done; log lines say which happened to each blob.
func TestObservers(t *testing.T) {
	it := &Item{Repo: "team/app", Tag: "v1", Target: "edge/team/app"}
	d := func(c string, size int64) v1.Descriptor {
		return v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(c, 64)}, Size: size}
	}
	drive := func(o Observer) {
		sent := o.Blob(it, d("a", 10))
		sent.Add(4)
		sent.Add(6)
		sent.End(nil)
		o.Blob(it, d("b", 5)).End(nil)
		o.Blob(it, d("c", 7)).End(errors.New("DENIED"))
		o.Blob(it, d("d", 7)).End(ErrStopped)
		o.Done(Result{Item: it, Status: Failed, Bytes: 10, Err: errors.New("blob: DENIED")})
	}
	for _, tt := range []struct {
		total int64
		want  []string
	}{
		{0, []string{"0 B / 0 B  100%"}},
		{29, []string{"team/app:v1 -> edge/team/app: failed: blob: DENIED\n", "\r15 B / 29 B   51%"}},
	} {
		done := make(chan struct{})
		var out bytes.Buffer
		go func() {
			defer close(done)
			b := NewBars(&out, tt.total)
			if tt.total > 0 {
				drive(b)
			}
			b.Wait()
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Bars(total %d).Wait did not return", tt.total)
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("Bars(total %d) output lacks %q:\n%q", tt.total, w, out.String())
			}
		}
		if strings.Contains(out.String(), "in flight\x1b[K\n") {
			t.Errorf("Bars(total %d) ended with blobs in flight:\n%q", tt.total, out.String())
		}
	}
	var out bytes.Buffer
	drive(NewLines(&out))
	for _, want := range []string{
		"team/app:v1: blob sha256:" + strings.Repeat("a", 64) + ": sent 10 bytes",
		"blob sha256:" + strings.Repeat("b", 64) + ": mounted or already there",
		"blob sha256:" + strings.Repeat("c", 64) + ": failed: DENIED",
		"blob sha256:" + strings.Repeat("d", 64) + ": stopped",
		"team/app:v1 -> edge/team/app: failed: blob: DENIED",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Lines output lacks %q:\n%s", want, out.String())
		}
	}
}
