package gc

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// TestStress pushes images sharing layers, deletes tags and runs GC
// passes, all at once, for a bounded time. Afterwards every tagged image
// must pull whole and every stored blob must match its digest.
func TestStress(t *testing.T) {
	duration := 8 * time.Second
	if testing.Short() {
		duration = 2 * time.Second
	}
	s := openStore(t)
	srv := httptest.NewServer(registry.New(s))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	var shared []v1.Layer
	for range 4 {
		l, err := random.Layer(2048, "application/vnd.oci.image.layer.v1.tar+gzip")
		if err != nil {
			t.Fatal(err)
		}
		shared = append(shared, l)
	}
	ctx, cancel := context.WithTimeout(t.Context(), duration)
	defer cancel()
	// A grace period longer than any push here: a push must never fail.
	opts := Options{Grace: 3 * time.Second, DeleteUntagged: true, DeleteOrphanReferrers: true, UploadMaxAge: time.Hour}

	var pushes, deletes, passes, failures, collected atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ctx.Err() == nil; i++ {
				repo := fmt.Sprintf("team/app%d", rng.IntN(3))
				own, _ := random.Layer(1024, "application/vnd.oci.image.layer.v1.tar+gzip")
				img, err := mutate.AppendLayers(empty.Image, shared[rng.IntN(len(shared))], shared[rng.IntN(len(shared))], own)
				if err != nil {
					t.Error(err)
					return
				}
				ref, _ := name.ParseReference(fmt.Sprintf("%s/%s:w%d-%d", host, repo, w, i%8), name.Insecure)
				if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
					if ctx.Err() == nil {
						failures.Add(1)
						t.Errorf("push %s = %v", ref, err)
					}
					continue
				}
				pushes.Add(1)
				if rng.IntN(3) == 0 {
					tag, _ := name.NewTag(fmt.Sprintf("%s/%s:w%d-%d", host, repo, w, rng.IntN(8)), name.Insecure)
					if err := remote.Delete(tag, remote.WithContext(ctx)); err == nil {
						deletes.Add(1)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			res, err := Run(ctx, s, opts, nil, zerolog.Nop())
			if err != nil && ctx.Err() == nil {
				t.Errorf("gc.Run = %v", err)
			}
			collected.Add(int64(res.Blobs))
			passes.Add(1)
		}
	})
	wg.Wait()
	t.Logf("%d pushes, %d tag deletes, %d GC passes deleting %d blobs, %d failed pushes",
		pushes.Load(), deletes.Load(), passes.Load(), collected.Load(), failures.Load())
	if !testing.Short() && collected.Load() == 0 {
		t.Errorf("GC passes during the pushes deleted no blob: the test exercised nothing")
	}

	// Two last passes past every grace period collect everything
	// untagged: blobs whose last link goes in one pass's apply are only
	// planned by the next.
	final := opts
	final.Now = time.Now().Add(time.Hour)
	for range 2 {
		if _, err := Run(t.Context(), s, final, nil, zerolog.Nop()); err != nil {
			t.Fatalf("final gc.Run = %v", err)
		}
	}
	checkPullable(t, s, host)
	checkBlobs(t, s)
}

func checkPullable(t *testing.T, s *storage.Store, host string) {
	t.Helper()
	repos, _, _ := s.Repositories(t.Context(), "", -1)
	images := 0
	for _, repo := range repos {
		tags, _, _ := s.Tags(t.Context(), repo, "", -1)
		for _, tag := range tags {
			ref, _ := name.ParseReference(host+"/"+repo+":"+tag, name.Insecure)
			img, err := remote.Image(ref)
			if err != nil {
				t.Errorf("pull %s = %v", ref, err)
				continue
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("validate %s = %v", ref, err)
			}
			images++
		}
	}
	if images == 0 {
		t.Errorf("no tagged image left to check")
	}
}

func checkBlobs(t *testing.T, s *storage.Store) {
	t.Helper()
	n := 0
	err := s.ScanBlobs(t.Context(), func(b storage.GCBlob) error {
		rc, err := s.OpenBlob(t.Context(), b.Digest, 0)
		if err != nil {
			t.Errorf("OpenBlob(%s) = %v", b.Digest, err)
			return nil
		}
		defer rc.Close()
		h := sha256.New()
		size, _ := io.Copy(h, rc)
		if got := digest.NewDigest(digest.SHA256, h); got != b.Digest || size != b.Size {
			t.Errorf("blob %s holds %s, %d bytes, want %d", b.Digest, got, size, b.Size)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing unreferenced survived the final pass: every blob is linked.
	p, _ := Plan(t.Context(), s, Options{Grace: 0, DeleteUntagged: true, DeleteOrphanReferrers: true, Now: time.Now().Add(time.Hour)})
	for _, it := range p.Items {
		if it.Kind == KindBlob || it.Kind == KindFile {
			t.Errorf("after the final pass, still to collect: %+v", it)
		}
	}
	t.Logf("%d blobs verified", n)
}
