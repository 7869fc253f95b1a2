package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nora-registry/nora/storage/disktest"
)

// TestE2EFullDisk fills the data directory's disk with pushes: the push
// that does not fit answers 507 STORAGE_FULL and leaves no partial bytes;
// once the tags are deleted, GC frees the disk and says what it did, and
// pushes work again.
func TestE2EFullDisk(t *testing.T) {
	if e2eStorage() == "s3" {
		t.Skip("blobs live in S3: the data directory does not fill")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	disktest.MountTmpfs(t, data, 32<<20)
	s := startServerIn(t, dir, "", "[gc]\ninterval = \"0\"\ngrace = \"0s\"\ndelete_untagged = true\n")

	const layerSize, small = 2 << 20, 160
	push := func(repo string, i int, size int64) (name.Tag, error) {
		layer, err := random.Layer(size, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img, _ := mutate.AppendLayers(empty.Image, layer)
		ref, _ := name.NewTag(fmt.Sprintf("%s/full/%s:%d", s.host(), repo, i), name.Insecure)
		return ref, remote.Write(ref, img)
	}
	// Many small images first. GC deletes every other one: that rewrites
	// every page of their records, more pages than the pushes and tag
	// deletions left free, so GC needs the metadata file to grow on the
	// full disk.
	var pushed []name.Tag
	for i := range small {
		ref, err := push("small", i, 512)
		if err != nil {
			t.Fatal(err)
		}
		pushed = append(pushed, ref)
	}
	var pushErr error
	for i := range 30 {
		ref, err := push("big", i, layerSize)
		if err != nil {
			pushErr = err
			break
		}
		pushed = append(pushed, ref)
	}
	if pushErr == nil {
		t.Fatalf("30 pushes of %d bytes fit in a 32 MiB filesystem", layerSize)
	}
	var terr *transport.Error
	if !errors.As(pushErr, &terr) || terr.StatusCode != http.StatusInsufficientStorage ||
		!strings.Contains(pushErr.Error(), "the registry's storage is full") {
		t.Fatalf("push on a full disk = %v, want 507 with \"the registry's storage is full\"", pushErr)
	}
	if len(pushed) < small+5 {
		t.Fatalf("only %d pushes of %d bytes before the disk was full", len(pushed)-small, layerSize)
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "uploads")); len(ents) != 0 {
		t.Errorf("uploads/ holds %d files after the failed push, want none", len(ents))
	}
	t.Logf("%d images pushed, then: %v; %d bytes free", len(pushed), pushErr, disktest.Free(t, data))
	// Something else takes what the failed push left: the disk is full.
	disktest.Fill(t, filepath.Join(data, "filler"))

	var deleted []name.Tag
	for i, ref := range pushed {
		if i < small && i%2 == 0 {
			continue
		}
		deleted = append(deleted, ref)
		if err := remote.Delete(ref); err != nil {
			t.Fatalf("delete %s on a full disk: %v", ref, err)
		}
	}
	out, err := exec.Command(registryBin, "gc", "--bytes", "--config", s.config).CombinedOutput()
	if err != nil {
		t.Fatalf("registry gc = %v\n%s", err, out)
	}
	m := regexp.MustCompile(`deleted (\d+) manifests, (\d+) blob links, (\d+) blobs, \d+ uploads, \d+ unknown files; freed (\d+) bytes; (\d+) planned items no longer qualified; (\d+) failed`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("registry gc printed no summary:\n%s", out)
	}
	t.Logf("registry gc: %s; %d bytes free after it", m[0], disktest.Free(t, data))
	n := func(i int) int64 { v, _ := strconv.ParseInt(m[i], 10, 64); return v }
	// Each image is a layer and a config; the push that failed may have
	// left its config.
	images := int64(len(deleted))
	big := int64(len(pushed)-small) * layerSize
	if n(1) != images || n(3) < 2*images || n(3) > 2*images+1 || n(4) < big || n(5) != 0 || n(6) != 0 {
		t.Errorf("registry gc summary: %s; want %d manifests, %d or %d blobs, at least %d bytes, 0 skipped, 0 failed",
			m[0], images, 2*images, 2*images+1, big)
	}
	if free := disktest.Free(t, data); free < big {
		t.Errorf("%d bytes free after GC, want at least %d", free, big)
	}
	for i := range 3 {
		if _, err := push("big", 100+i, layerSize); err != nil {
			t.Fatalf("push after GC = %v", err)
		}
	}
}
