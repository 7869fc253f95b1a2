//go:build unix

package storage

import (
	"io/fs"
	"os"
	"syscall"
)

// ownLike gives the files at paths the owner, group and permissions of
// like, as far as this process may.
func ownLike(like fs.FileInfo, paths ...string) {
	st, ok := like.Sys().(*syscall.Stat_t)
	for _, p := range paths {
		if ok {
			os.Chown(p, int(st.Uid), int(st.Gid))
		}
		os.Chmod(p, like.Mode().Perm())
	}
}
