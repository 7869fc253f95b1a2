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
// their next use; the resident set then counts those alone. Private
// read-only pages are never changed, so dropping them loses nothing (and
// the kernel refuses writes to a running executable's file, ETXTBSY, so
// what faults back in is what was mapped); writable ones (the binary's
// data) are left alone.
func releaseExecutable() {
	for _, r := range executableRanges() {
		unix.Syscall(unix.SYS_MADVISE, r.start, r.size, unix.MADV_DONTNEED)
	}
}

type addrRange struct{ start, size uintptr }

// executableRanges returns, found once, the private read-only mappings
// of the file /proc/self/exe names, matched by device and inode or, where
// they differ from the mapping's (an overlay filesystem's), by path.
var executableRanges = sync.OnceValue(func() []addrRange {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return nil
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil
	}
	defer f.Close()
	dev := fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev))
	ino := strconv.FormatUint(st.Ino, 10)
	var ranges []addrRange
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode path
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || len(fs[1]) != 4 || fs[1][1] != '-' || fs[1][3] != 'p' {
			continue
		}
		if (fs[3] != dev || fs[4] != ino) && strings.Join(fs[5:], " ") != exe {
			continue
		}
		lo, hi, _ := strings.Cut(fs[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		ranges = append(ranges, addrRange{uintptr(start), uintptr(end - start)})
	}
	return ranges
})
