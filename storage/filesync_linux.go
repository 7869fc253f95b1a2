package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync makes f's data durable, and its size, without its times.
func fdatasync(f *os.File) error {
	return unix.Fdatasync(int(f.Fd()))
}

// tryLock takes an exclusive lock on f without waiting, and reports
// whether it has it.
func tryLock(f *os.File) bool {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}
