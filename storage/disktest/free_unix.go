//go:build unix

package disktest

import (
	"syscall"
	"testing"
)

// Free returns the bytes free to write on the filesystem of path.
func Free(t testing.TB, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	// The fields' types differ between systems.
	return int64(st.Bavail) * int64(st.Bsize)
}
