package storage

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// syncKeepsRename reports whether the filesystem holding dir makes a new
// file's new name durable when the file is fsynced, for the first time,
// after its rename, so that the directory the file lands in needs no
// fsync of its own:
//   - ext4 with its journal: the file's fsync commits the transaction the
//     rename changed the file's inode in, and every one before it;
//   - ext4 without one: the fsync of a file created since its last fsync
//     also syncs the directory it is in (ext4_sync_parent);
//   - XFS: the fsync forces the log up to the file's last change, the
//     rename, and so every transaction before it.
//
// TestRenameDurableWithFileSync checks each on a real device. The type is
// read from /proc/self/mountinfo rather than statfs(2), which gives ext2
// and ext3, whose own drivers sync no directory, ext4's number.
func syncKeepsRename(dir string) bool {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return false
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	switch mountType(info, unix.Major(st.Dev), unix.Minor(st.Dev)) {
	case "ext4", "xfs":
		return true
	}
	return false
}

// mountType returns the filesystem type mountinfo (proc(5)) gives the
// device major:minor, or "" if it names none.
func mountType(mountinfo []byte, major, minor uint32) string {
	dev := fmt.Sprintf("%d:%d", major, minor)
	for line := range strings.Lines(string(mountinfo)) {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != dev {
			continue
		}
		for i, v := range f[3:] {
			if v == "-" && 3+i+1 < len(f) {
				return f[3+i+1]
			}
		}
	}
	return ""
}
