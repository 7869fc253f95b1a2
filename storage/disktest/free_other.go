//go:build !unix

package disktest

import "testing"

// Free skips the test: it reads statfs(2), which this system lacks.
func Free(t testing.TB, path string) int64 {
	t.Helper()
	t.Skip("free space is read with statfs(2), which this system lacks")
	return 0
}
