package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nora-registry/nora/storage/disktest"
)

// TestE2EPowerLoss cuts the power under a running registry, on paper:
// its data directory is on a filesystem on a loop device, and while
// pushes are still coming in the process is stopped and a copy of the
// device is taken, holding only what reached it (disktest.Snapshot). A
// registry started on that copy, as after the power came back, serves
// every image acknowledged before the cut, by each of its tags, byte for
// byte: images pushed by go-containerregistry (chunked uploads) and
// images whose blobs came in one POST each (moved into directories that
// ext4 and XFS get no fsync of their own for), their metadata journal
// replayed, and the keys made at first start.
func TestE2EPowerLoss(t *testing.T) {
	if e2eStorage() == "s3" {
		t.Skip("blobs on S3 are not on the device: this runs on the filesystem only")
	}
	for _, fs := range []struct {
		name, fstype, opts string
		size               int64
		mkfs               []string
	}{
		// commit=300: no timed journal commit while the copy is made.
		{"ext4", "ext4", "commit=300", 128 << 20, []string{"-q"}},
		{"ext4 without a journal", "ext4", "", 128 << 20, []string{"-q", "-O", "^has_journal"}},
		{"xfs", "xfs", "", 320 << 20, []string{"-q"}},
	} {
		t.Run(fs.name, func(t *testing.T) {
			mnt, image := disktest.MountImage(t, fs.fstype, fs.size, fs.opts, fs.mkfs...)
			s := startServerIn(t, mnt, "", "")
			imgs := map[string]v1.Image{}
			for i := range 4 {
				img, err := random.Image(64<<10, 3)
				if err != nil {
					t.Fatal(err)
				}
				ref := fmt.Sprintf("power/app%d:v%d", i%2, i)
				if err := remote.Write(s.ref(t, ref), img); err != nil {
					t.Fatalf("remote.Write(%s) = %v", ref, err)
				}
				imgs[ref] = img
				if i%2 == 1 { // a second tag of an image pushed before
					also := fmt.Sprintf("power/app%d:also-v%d", i%2, i)
					if err := remote.Tag(s.ref(t, also).(name.Tag), img); err != nil {
						t.Fatalf("remote.Tag = %v", err)
					}
					imgs[also] = img
				}
			}

			var mu sync.Mutex
			var posted []postedImage
			stop, done := make(chan struct{}), make(chan error, 1)
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						done <- nil
						return
					default:
					}
					img, err := postImage(s.url(""), fmt.Sprintf("power/post%d", i%2), fmt.Sprintf("t%d", i))
					if err != nil {
						done <- err
						return
					}
					mu.Lock()
					posted = append(posted, img)
					mu.Unlock()
				}
			}()
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
				mu.Lock()
				n := len(posted)
				mu.Unlock()
				if n >= 4 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d images posted in 30s, want 4", n)
				}
			}
			s.signal(syscall.SIGSTOP)
			mu.Lock()
			acked := slices.Clone(posted)
			mu.Unlock()
			snap := disktest.SnapshotWritable(t, image)
			s.signal(syscall.SIGCONT)
			close(stop)
			if err := <-done; err != nil {
				t.Fatalf("posting images: %v", err)
			}
			s.stop()

			after := startServerIn(t, snap, "", "")
			for ref, img := range imgs {
				pullWhole(t, after.ref(t, ref), img)
			}
			for _, img := range acked {
				img.check(t, after)
			}
			t.Logf("%d images pushed in chunks and %d in single POSTs acknowledged before the cut, all served after it", len(imgs), len(acked))
		})
	}
}

// postedImage is an image whose blobs were each pushed in one POST.
type postedImage struct {
	repo, tag string
	manifest  []byte
	blobs     map[string][]byte // digest → bytes
}

// postImage pushes a random layer and a config, each in one POST with
// its digest, then a manifest naming them under tag.
func postImage(base, repo, tag string) (postedImage, error) {
	img := postedImage{repo: repo, tag: tag, blobs: map[string][]byte{}}
	layer := make([]byte, 32<<10)
	rand.Read(layer)
	config := fmt.Appendf(nil, `{"architecture":"arm","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, sha256of(layer))
	for _, b := range [][]byte{layer, config} {
		d := sha256of(b)
		if err := send(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", b, http.StatusCreated); err != nil {
			return img, err
		}
		img.blobs[d] = b
	}
	img.manifest = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		sha256of(config), len(config), sha256of(layer), len(layer))
	return img, send(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, "application/vnd.oci.image.manifest.v1+json", img.manifest, http.StatusCreated)
}

func send(method, url, contentType string, body []byte, want int) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s = %s, want %d", method, url, resp.Status, want)
	}
	return nil
}

// check pulls img from s by its tag, manifest and blobs, byte for byte.
func (img postedImage) check(t *testing.T, s *e2eServer) {
	t.Helper()
	hdr := http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}
	if resp, b := s.do(t, http.MethodGet, "/v2/"+img.repo+"/manifests/"+img.tag, hdr, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(b, img.manifest) {
		t.Errorf("%s:%s after the power cut: %s, %d bytes; want its %d-byte manifest", img.repo, img.tag, resp.Status, len(b), len(img.manifest))
	}
	for d, want := range img.blobs {
		if resp, b := s.do(t, http.MethodGet, "/v2/"+img.repo+"/blobs/"+d, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(b, want) {
			t.Errorf("%s blob %s after the power cut: %s, %d bytes; want %d", img.repo, d, resp.Status, len(b), len(want))
		}
	}
}

// signal sends sig to the running process and, for SIGSTOP, returns once
// the process has stopped.
func (s *e2eServer) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v = %v", sig, err)
	}
	if sig != syscall.SIGSTOP {
		return
	}
	stat := fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		// pid (comm) state …: the state is the field after the command.
		b, err := os.ReadFile(stat)
		if i := strings.LastIndexByte(string(b), ')'); err == nil && i >= 0 && strings.HasPrefix(string(b[i:]), ") T") {
			return
		}
	}
	s.t.Fatalf("the registry did not stop within 5s of SIGSTOP")
}
