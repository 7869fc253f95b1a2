//go:build !linux

package storage

import "os"

// fdatasync makes f's data durable.
func fdatasync(f *os.File) error {
	return f.Sync()
}

// tryLock reports true: there, bbolt's own lock on the metadata file is
// the only guard against a second process.
func tryLock(f *os.File) bool { return true }
