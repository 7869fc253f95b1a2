//go:build !unix

package storage

import (
	"os"
	"testing"
)

// diskUse returns the size of the file at path.
func diskUse(tb testing.TB, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}
