package disktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// MountImage makes a filesystem of type fstype (mkfs.fstype with
// mkfsArgs) in a sparse file of size bytes, mounts it with a loop device
// and mount options opts (may be empty), and returns the mount directory
// and the file, the device's image. It unmounts it when the test ends.
// Without root, mount(8) or the mkfs, it skips the test, except under
// CI=true as root, where it fails.
func MountImage(t testing.TB, fstype string, size int64, opts string, mkfsArgs ...string) (dir, image string) {
	t.Helper()
	base := t.TempDir()
	image, dir = filepath.Join(base, fstype+".img"), filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(image)
	if err == nil {
		err = f.Truncate(size)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs."+fstype, append(mkfsArgs, image)...).CombinedOutput(); err != nil {
		need(t, "mkfs."+fstype, err, out)
	}
	if opts != "" {
		opts = "," + opts
	}
	mount(t, image, dir, "loop"+opts)
	return dir, image
}

// Snapshot mounts a copy of image, a device MountImage made, as it holds
// now: what a power cut at this moment leaves on a disk that keeps every
// write it has completed and none it has not, since a loop device's
// writes reach its image when they complete. Mounting the copy replays a
// journal or log, as the first mount after a crash does. It returns the
// copy's mount directory, read-only; nothing may write the device while
// the copy is made.
func Snapshot(t testing.TB, image string) string {
	t.Helper()
	dir := SnapshotWritable(t, image)
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remounting %s read-only: %v: %s", dir, err, out)
	}
	return dir
}

// SnapshotWritable is Snapshot mounted read-write, for a program to start
// on as it would after the power came back.
func SnapshotWritable(t testing.TB, image string) string {
	t.Helper()
	base := t.TempDir()
	snap, dir := filepath.Join(base, "snap.img"), filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "--sparse=always", image, snap).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v: %s", image, err, out)
	}
	// nouuid: XFS refuses a second mount of the same filesystem's UUID.
	opts := "loop"
	if out, _ := exec.Command("blkid", "-o", "value", "-s", "TYPE", snap).Output(); string(out) == "xfs\n" {
		opts += ",nouuid"
	}
	mount(t, snap, dir, opts)
	return dir
}

func mount(t testing.TB, image, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", opts, image, dir).CombinedOutput(); err != nil {
		need(t, "mount -o "+opts, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
}

// need fails or skips the test for a missing tool or right, as
// MountTmpfs does.
func need(t testing.TB, what string, err error, out []byte) {
	t.Helper()
	msg := what + " needs root and the tool: " + err.Error() + ": " + string(out)
	if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
