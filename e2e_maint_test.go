package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestE2EGCServerGone kills the server with SIGKILL while `registry gc`
// runs a slow pass in it: the command says the server went away and
// exits non-zero, without running a pass of its own on the store the
// restarting server needs.
func TestE2EGCServerGone(t *testing.T) {
	if e2eStorage() == "s3" {
		t.Skip("the admin socket does not depend on the blob store: this runs on the filesystem only")
	}
	s := startServerWith(t, "[gc]\ninterval = \"0\"\n")
	// Enough images that a pass works past the pacer's first slice.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				layer, _ := random.Layer(256, "application/vnd.oci.image.layer.v1.tar+gzip")
				img, _ := mutate.AppendLayers(empty.Image, layer)
				ref, _ := name.NewTag(fmt.Sprintf("%s/gone/app%d:v%d", s.host(), i%20, w*100+i), name.Insecure)
				if err := remote.Write(ref, img); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// At this pace each millisecond of work pauses the pass ten seconds.
	for _, args := range [][]string{{"gc", "--pace", "0.0001"}, {"gc", "--dry-run", "--pace", "0.0001"}} {
		out := &lockedBuffer{}
		cli := exec.Command(registryBin, append(args, "--config", s.config)...)
		cli.Stdout, cli.Stderr = out, out
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cli.Wait() }()
		// Kill the server only once the command is talking to it: a slow
		// start (the race detector, a loaded machine) must not turn this
		// into a test of the offline pass.
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "using the running server"); {
			select {
			case err := <-exited:
				t.Fatalf("%q ended before the server was killed (%v): the pass was too short\n%s", args, err, out.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				cli.Process.Kill()
				t.Fatalf("%q did not reach the server within 20s:\n%s", args, out.String())
			}
		}
		time.Sleep(300 * time.Millisecond) // into the pass
		select {
		case err := <-exited:
			t.Fatalf("%q ended before the server was killed (%v): the pass was too short\n%s", args, err, out.String())
		default:
		}
		s.kill()
		select {
		case err := <-exited:
			got := out.String()
			if err == nil || !strings.Contains(got, "the server went away during the pass; not running offline") {
				t.Errorf("%q after the server died = %v\n%s\nwant a non-zero exit saying the server went away", args, err, got)
			}
			if strings.Contains(got, "(offline)") || strings.Contains(got, "deleted ") {
				t.Errorf("%q ran a pass of its own:\n%s", args, got)
			}
		case <-time.After(10 * time.Second):
			cli.Process.Kill()
			t.Fatalf("%q still runs 10s after the server died:\n%s", args, out.String())
		}
		s.start()
	}
}

// lockedBuffer is a bytes.Buffer a child process writes while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
