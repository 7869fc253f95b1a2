//go:build bench && linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// benchDisk reads the I/O counters of the block device that holds a
// directory: requests completed, which move less with the machine's load
// than the rates they limit.
type benchDisk struct {
	dev string // the name in /proc/diskstats; "" when unknown
}

// newBenchDisk finds the device of the filesystem holding dir.
func newBenchDisk(dir string) benchDisk {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return benchDisk{}
	}
	uevent, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return benchDisk{}
	}
	for line := range strings.Lines(string(uevent)) {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "DEVNAME="); ok {
			return benchDisk{dev: name}
		}
	}
	return benchDisk{}
}

// describe names the device and, for ext4, whether it has a journal: with
// none, an fsync writes what it names and nothing more, and a directory's
// fsync costs a write of its own.
func (d benchDisk) describe() string {
	if d.dev == "" {
		return "disk unknown"
	}
	switch ext4, journal := d.ext4(); {
	case !ext4:
		return "disk " + d.dev
	case journal:
		return "disk " + d.dev + ", ext4 with a journal"
	default:
		return "disk " + d.dev + ", ext4 without a journal"
	}
}

// ext4 reports whether the device holds an ext4, and whether that has a
// journal.
func (d benchDisk) ext4() (ext4, journal bool) {
	if d.dev == "" {
		return false, false
	}
	if _, err := os.Stat(filepath.Join("/proc/fs/ext4", d.dev)); err != nil {
		return false, false
	}
	_, err := os.Stat(filepath.Join("/proc/fs/jbd2", d.dev+"-8"))
	return true, err == nil
}

// benchDeletedMarker, in the temporary directory, is touched once a run's
// files are deleted.
const benchDeletedMarker = "nora-bench-deleted"

// benchDeletionsSettle is how long an ext4 without a journal makes new
// files skip the inodes deleted before (the kernel's recently_deleted,
// 60 s from the deletion, more while the inode table is unwritten).
const benchDeletionsSettle = 90 * time.Second

// markDeletions has the time this run's files are deleted recorded, for
// settleDeletions. It must run before the run's directory is made: clean-ups
// run last first.
func markDeletions(t *testing.T) {
	t.Cleanup(func() { os.WriteFile(filepath.Join(os.TempDir(), benchDeletedMarker), nil, 0o644) })
}

// settleDeletions waits, on an ext4 without a journal, until the last
// run's deletions are benchDeletionsSettle old. Every file created in the
// minute after deletions on such a disk scans past the inodes they freed:
// right after a run had removed its files, the next run's registry spent
// 13% of its CPU on small images finding inodes for its uploads.
func settleDeletions(t *testing.T) {
	if ext4, journal := newBenchDisk(os.TempDir()).ext4(); !ext4 || journal {
		return
	}
	fi, err := os.Stat(filepath.Join(os.TempDir(), benchDeletedMarker))
	if err != nil {
		return
	}
	if wait := benchDeletionsSettle - time.Since(fi.ModTime()); wait > 0 {
		t.Logf("waiting %s: the last run deleted its files %s ago, and new files on an ext4 without a journal skip recently deleted inodes", wait.Round(time.Second), time.Since(fi.ModTime()).Round(time.Second))
		time.Sleep(wait)
	}
}

// counts returns the writes and cache flushes the device has completed.
func (d benchDisk) counts() (writes, flushes int64, ok bool) {
	if d.dev == "" {
		return 0, 0, false
	}
	f, err := os.Open("/proc/diskstats")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// major minor name reads ... writes (field 8) ... flushes (field 19)
		fields := strings.Fields(sc.Text())
		if len(fields) < 19 || fields[2] != d.dev {
			continue
		}
		writes, err1 := strconv.ParseInt(fields[7], 10, 64)
		flushes, err2 := strconv.ParseInt(fields[18], 10, 64)
		return writes, flushes, err1 == nil && err2 == nil
	}
	return 0, 0, false
}
