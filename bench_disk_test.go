//go:build bench

package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	if _, err := os.Stat(filepath.Join("/proc/fs/ext4", d.dev)); err != nil {
		return "disk " + d.dev
	}
	if _, err := os.Stat(filepath.Join("/proc/fs/jbd2", d.dev+"-8")); err != nil {
		return "disk " + d.dev + ", ext4 without a journal"
	}
	return "disk " + d.dev + ", ext4 with a journal"
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
