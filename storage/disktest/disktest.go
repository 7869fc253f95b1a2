// Package disktest gives tests small real filesystems: a tmpfs to fill,
// and a filesystem made on a loop device whose state a power cut would
// leave can be mounted beside it (image.go). Mounting needs root and
// mount(8); without them a test is skipped with a message saying so,
// except under CI=true as root, where it fails.
package disktest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// MountTmpfs mounts a tmpfs of size bytes at dir, creating dir, and
// unmounts it when the test ends.
func MountTmpfs(t testing.TB, dir string, size int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("mounting a tmpfs needs root and mount(8): %v: %s", err, out)
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// Fill writes path until its filesystem has no byte left.
func Fill(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for n := len(buf); n > 0; n /= 2 {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	if free := Free(t, path); free > 0 {
		t.Fatalf("%d bytes still free after filling the disk", free)
	}
}
