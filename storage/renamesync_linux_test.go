package storage

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/nora-registry/nora/storage/disktest"
)

func TestMountType(t *testing.T) {
	info := []byte(`22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
36 22 7:0 / /srv/data rw,relatime shared:20 - xfs /dev/loop0 rw,attr2
37 22 7:1 / /old rw shared:21 - ext2 /dev/loop1 rw
38 22 0:45 / /var/lib/registry rw master:3 opt:x - overlay overlay rw,lowerdir=/a
`)
	for _, tc := range []struct {
		major, minor uint32
		want         string
	}{{254, 1, "ext4"}, {7, 0, "xfs"}, {7, 1, "ext2"}, {0, 45, "overlay"}, {8, 1, ""}} {
		if got := mountType(info, tc.major, tc.minor); got != tc.want {
			t.Errorf("mountType(%d:%d) = %q, want %q", tc.major, tc.minor, got, tc.want)
		}
	}
}

// TestRenameDurableWithFileSync checks, on real filesystems on a loop
// device, what placeBlob leaves to the file's fsync: where the driver
// says so (ext4 with and without its journal, XFS), a new file moved into
// an existing directory and then fsynced has its new name on the device,
// with no fsync of the directory. A file moved and not synced does not, so
// the device's copy shows only what was made durable. ext2 is not trusted.
func TestRenameDurableWithFileSync(t *testing.T) {
	// The ext4 mounts commit their journal every 300 s rather than 5, so
	// that no timed commit carries the unsynced move onto the device
	// before the copy is taken.
	for _, fs := range []struct {
		name, fstype, opts string
		size               int64
		mkfs               []string
		keeps              bool
	}{
		{"ext4", "ext4", "commit=300", 64 << 20, []string{"-q"}, true},
		{"ext4 without a journal", "ext4", "", 64 << 20, []string{"-q", "-O", "^has_journal"}, true},
		{"xfs", "xfs", "", 320 << 20, []string{"-q"}, true},
		{"ext2", "ext2", "", 64 << 20, []string{"-q"}, false},
	} {
		t.Run(fs.name, func(t *testing.T) {
			mnt, image := disktest.MountImage(t, fs.fstype, fs.size, fs.opts, fs.mkfs...)
			f, err := NewFilesystem(filepath.Join(mnt, "data"))
			if err != nil {
				t.Fatal(err)
			}
			if f.keepsRename != fs.keeps {
				t.Fatalf("driver on %s: file sync keeps renames = %t, want %t", fs.name, f.keepsRename, fs.keeps)
			}
			if !fs.keeps {
				return
			}
			write := func(key, body string) Writer {
				w, err := f.Writer(t.Context(), key, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write([]byte(body)); err != nil {
					t.Fatal(err)
				}
				return w
			}
			// The fan-out directory and uploads/ exist, durably.
			write("uploads/first", "first").Commit()
			if _, err := f.moveUnsynced("uploads/first", "blobs/sha256/ab/first"); err != nil {
				t.Fatal(err)
			}
			syscall.Sync()

			w := write("uploads/synced", "synced bytes")
			dirs, err := f.moveBeforeSync("uploads/synced", "blobs/sha256/ab/synced")
			if err != nil || len(dirs) != 0 {
				t.Fatalf("moveBeforeSync = %q, %v; want no directory to sync", dirs, err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			unsynced := write("uploads/unsynced", "unsynced bytes")
			unsynced.Close()
			if _, err := f.moveUnsynced("uploads/unsynced", "blobs/sha256/ab/unsynced"); err != nil {
				t.Fatal(err)
			}

			snap := filepath.Join(disktest.Snapshot(t, image), "data")
			if b, err := os.ReadFile(filepath.Join(snap, "blobs/sha256/ab/synced")); err != nil || string(b) != "synced bytes" {
				t.Errorf("after a power cut, the file synced after its move holds %q, %v; want its bytes at its new name", b, err)
			}
			if _, err := os.Stat(filepath.Join(snap, "blobs/sha256/ab/unsynced")); err == nil {
				t.Errorf("after a power cut, the file moved and not synced is at its new name: the copy shows writes not made durable, and proves nothing")
			}
		})
	}
}
