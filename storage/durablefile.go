package storage

import (
	"os"
	"path/filepath"
)

// WriteFileDurable writes data to the file at path so that after a crash
// or a power cut, at any moment, path holds either what it held before
// (or nothing) or all of data, never a part: data goes to a new file in
// the same directory, which is synced, then renamed over path, and the
// directory is synced. A crash before the rename can leave the new file,
// named "."+base+".*", behind.
func WriteFileDurable(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
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
