//go:build !unix

package storage

import (
	"io/fs"
	"os"
)

// ownLike gives the files at paths the permissions of like.
func ownLike(like fs.FileInfo, paths ...string) {
	for _, p := range paths {
		os.Chmod(p, like.Mode().Perm())
	}
}
