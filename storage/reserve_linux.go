package storage

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// allocate allocates length bytes of f from off with fallocate, which
// writes no data. It reports false when the filesystem cannot.
func allocate(f *os.File, off, length int64) (bool, error) {
	err := unix.Fallocate(int(f.Fd()), 0, off, length)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return false, nil
	}
	return true, err
}
