package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// unmountUnder detaches what is still mounted below dir: a dockerd that
// failed to start, or was killed, leaves its data root mounted.
func unmountUnder(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- { // the last mounted first
		f := strings.Fields(lines[i])
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			if err := syscall.Unmount(f[4], syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s = %v", f[4], err)
			}
		}
	}
}
