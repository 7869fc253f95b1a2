package storage

import (
	"os"
	"path/filepath"
	"strings"
)

// WriteFileDurable writes data to the file at path so that after a crash
// or a power cut, at any moment, path holds either what it held before
// (or nothing) or all of data, never a part: data goes to a new file in
// the same directory, which is synced, then renamed over path, and the
// directory is synced. A crash before the rename can leave the new file,
// named "."+base+"."+digits, behind: the next write of path removes it
// (it may hold a key). Writes of one path must not run concurrently.
func WriteFileDurable(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	removeTempsOf(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// removeTempsOf removes what earlier writes of path left behind: files
// named "."+base+"."+digits beside it, os.CreateTemp's names for them.
func removeTempsOf(path string) {
	dir, prefix := filepath.Dir(path), "."+filepath.Base(path)+"."
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // the write that follows reports it
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if ok && rest != "" && strings.Trim(rest, "0123456789") == "" && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
