package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestE2EGCCrash kills the server with SIGKILL at random moments while
// clients push images sharing layers, delete tags and run `registry gc`
// through the admin socket. After a restart no tagged image is broken, and
// two more passes reclaim whatever the crashes left behind.
func TestE2EGCCrash(t *testing.T) {
	s := startServerWith(t, `
[gc]
interval = "0"
grace = "0s"
delete_untagged = true
`)
	var shared []v1.Layer
	for range 3 {
		l, _ := random.Layer(4096, "application/vnd.oci.image.layer.v1.tar+gzip")
		shared = append(shared, l)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 4 {
		ctx, cancel := context.WithCancel(t.Context())
		host := s.host()
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					own, _ := random.Layer(2048, "application/vnd.oci.image.layer.v1.tar+gzip")
					img, _ := mutate.AppendLayers(empty.Image, shared[(w+i)%3], own)
					ref, _ := name.ParseReference(fmt.Sprintf("%s/crash/app%d:r%d-%d", host, w, round, i%4), name.Insecure)
					// Pushes fail when the server dies, or with a grace of
					// 0s when GC drops a layer before its manifest: both
					// allowed. Broken tagged images are not.
					remote.Write(ref, img, remote.WithContext(ctx))
					if i%3 == 2 {
						tag, _ := name.NewTag(fmt.Sprintf("%s/crash/app%d:r%d-%d", host, w, round, (i+1)%4), name.Insecure)
						remote.Delete(tag, remote.WithContext(ctx))
					}
				}
			})
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				exec.CommandContext(ctx, registryBin, "gc", "--config", s.config).Run()
			}
		})
		time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond)
		s.kill()
		cancel()
		wg.Wait()
		s.start()
	}

	images := 0
	for w := range 3 {
		repo := fmt.Sprintf("crash/app%d", w)
		r, _ := name.NewRepository(s.host()+"/"+repo, name.Insecure)
		tags, err := remote.List(r)
		if err != nil {
			continue // never pushed before a kill
		}
		for _, tag := range tags {
			ref, _ := name.ParseReference(s.host()+"/"+repo+":"+tag, name.Insecure)
			img, err := remote.Image(ref)
			if err == nil {
				err = validate.Image(img)
			}
			if err != nil {
				t.Errorf("tagged image %s after crashes: %v", ref, err)
			}
			images++
		}
	}
	if images == 0 {
		t.Fatalf("no tagged image survived to check")
	}

	// The first pass notes crash leftovers, the second deletes them; a
	// dry run then finds nothing, and every blob file is known.
	for range 2 {
		if out, err := exec.Command(registryBin, "gc", "--config", s.config).CombinedOutput(); err != nil {
			t.Fatalf("registry gc = %v\n%s", err, out)
		}
	}
	out, err := exec.Command(registryBin, "gc", "--dry-run", "--bytes", "--config", s.config).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 items, 0 bytes to free\n") || strings.Contains(string(out), "waiting for the grace period") {
		t.Errorf("registry gc --dry-run after two passes = %v\n%s\nwant nothing left", err, out)
	}
	var uploads []string
	filepath.WalkDir(filepath.Join(s.dataDir, "uploads"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			uploads = append(uploads, p)
		}
		return nil
	})
	t.Logf("%d tagged images intact after 4 SIGKILLs; %d upload files of open sessions left", images, len(uploads))
}
