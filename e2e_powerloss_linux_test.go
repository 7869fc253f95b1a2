package main

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nora-registry/nora/storage/disktest"
)

// TestE2EPowerLoss cuts the power under a running registry, on paper:
// its data directory is on a filesystem on a loop device, and once every
// push has been answered the process is stopped and a copy of the device
// is taken, holding only what reached it (disktest.Snapshot). A registry
// started on that copy, as after the power came back, serves every
// acknowledged image by each of its tags, layer by layer: blob files,
// their names in directories that were never synced on their own (ext4,
// XFS), and the metadata journal all survived.
func TestE2EPowerLoss(t *testing.T) {
	if e2eStorage() == "s3" {
		t.Skip("blobs on S3 are not on the device: this runs on the filesystem only")
	}
	for _, fs := range []struct {
		name, fstype, opts string
		size               int64
		mkfs               []string
	}{
		{"ext4", "ext4", "commit=300", 128 << 20, []string{"-q"}},
		{"ext4 without a journal", "ext4", "", 128 << 20, []string{"-q", "-O", "^has_journal"}},
		{"xfs", "xfs", "", 320 << 20, []string{"-q"}},
	} {
		t.Run(fs.name, func(t *testing.T) {
			mnt, image := disktest.MountImage(t, fs.fstype, fs.size, fs.opts, fs.mkfs...)
			s := startServerIn(t, mnt, "", "")
			imgs := map[string]v1.Image{}
			for i := range 6 {
				img, err := random.Image(64<<10, 3)
				if err != nil {
					t.Fatal(err)
				}
				repo := fmt.Sprintf("power/app%d", i%3)
				tag := fmt.Sprintf("v%d", i)
				if err := remote.Write(s.ref(t, repo+":"+tag), img); err != nil {
					t.Fatalf("remote.Write(%s:%s) = %v", repo, tag, err)
				}
				imgs[repo+":"+tag] = img
				if i%2 == 1 { // a second tag of an image pushed before
					if err := remote.Tag(s.ref(t, repo+":also-"+tag).(name.Tag), img); err != nil {
						t.Fatalf("remote.Tag = %v", err)
					}
					imgs[repo+":also-"+tag] = img
				}
			}
			// Stopped, the process writes nothing while the copy is made.
			s.signal(syscall.SIGSTOP)
			snap := disktest.SnapshotWritable(t, image)
			s.signal(syscall.SIGCONT)
			s.stop()

			after := startServerIn(t, snap, "", "")
			for ref, img := range imgs {
				pullWhole(t, after.ref(t, ref), img)
			}
		})
	}
}

// signal sends sig to the running process.
func (s *e2eServer) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v = %v", sig, err)
	}
}
