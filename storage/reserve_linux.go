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

// freeSpace returns the bytes free to write on the filesystem of path,
// and false if it cannot tell.
func freeSpace(path string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
