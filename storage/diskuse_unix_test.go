//go:build unix

package storage

import (
	"os"
	"syscall"
	"testing"
)

// diskUse returns the bytes the file at path takes on disk: its
// allocated blocks, not the holes a truncate left.
func diskUse(tb testing.TB, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}
