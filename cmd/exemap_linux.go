package cmd

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// releaseExecutable drops this process's mappings of its executable's
// read-only pages, its code and constants, with madvise(MADV_DONTNEED).
// The kernel maps 64 KiB of the page cache around every page a fault
// reads (fault-around), so start-up code run once, and the code around
// it, stays in the resident set: 15 MB of a 20 MB binary after start.
// Dropped, the pages stay in the page cache, where the kernel can reclaim
// them before mapped ones, and the pages the server runs fault back in on
// their next use; the resident set then counts those alone.
//
// Only a mapping none of whose pages was changed is dropped: what faults
// back in is then what was there (the kernel refuses writes to a running
// executable's file, ETXTBSY). A read-only mapping can hold changed pages:
// a position-independent build's constants the loader relocated before
// making them read-only (RELRO), a debugger's breakpoints, a uprobe's.
// Dropped, those would read as the file has them, and the first relocated
// pointer would crash the process.
func releaseExecutable() {
	if exe := executableFile(); exe != nil {
		releaseUnchanged("/proc/self/smaps", exe.is)
	}
}

// releaseUnchanged drops the mappings listed in smaps (a /proc smaps
// file) that are private, not writable, hold resident pages (Rss) but no
// changed one (Anonymous: 0 kB) and whose file match accepts. An
// emulator's smaps (qemu-user's), which reports no page resident, so
// releases nothing.
func releaseUnchanged(smaps string, match func(dev, ino, path string) bool) {
	for _, r := range unchangedMappings(smaps, match) {
		unix.Syscall(unix.SYS_MADVISE, r.start, r.size, unix.MADV_DONTNEED)
	}
}

type addrRange struct{ start, size uintptr }

func unchangedMappings(smaps string, match func(dev, ino, path string) bool) []addrRange {
	f, err := os.Open(smaps)
	if err != nil {
		return nil
	}
	defer f.Close()
	var ranges []addrRange
	var cur addrRange
	candidate, resident, unchanged := false, false, false
	done := func() {
		if candidate && resident && unchanged {
			ranges = append(ranges, cur)
		}
		candidate, resident, unchanged = false, false, false
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if strings.HasSuffix(fs[0], ":") {
			// A field of the mapping above.
			if len(fs) >= 2 {
				switch fs[0] {
				case "Rss:":
					resident = fs[1] != "0"
				case "Anonymous:":
					unchanged = fs[1] == "0"
				}
			}
			continue
		}
		// address perms offset dev inode [path]
		done()
		if len(fs) < 6 || len(fs[1]) != 4 || fs[1][1] != '-' || fs[1][3] != 'p' || !match(fs[3], fs[4], strings.Join(fs[5:], " ")) {
			continue
		}
		lo, hi, _ := strings.Cut(fs[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && end > start {
			cur, candidate = addrRange{uintptr(start), uintptr(end - start)}, true
		}
	}
	done()
	if sc.Err() != nil {
		return nil
	}
	return ranges
}

// mappedFile names a file as /proc's maps and smaps show it.
type mappedFile struct{ dev, ino, path string }

// is matches f by device and inode or, where a mapping's differ from
// what stat reports (an overlay filesystem's), by path.
func (f *mappedFile) is(dev, ino, path string) bool {
	return dev == f.dev && ino == f.ino || path == f.path
}

// executableFile is the file /proc/self/exe names, or nil if unknown.
var executableFile = sync.OnceValue(func() *mappedFile {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return nil
	}
	path, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil
	}
	return &mappedFile{
		dev:  fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev)),
		ino:  strconv.FormatUint(st.Ino, 10),
		path: path,
	}
})
