package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Filesystem is the Driver that keeps blobs as files under a root
// directory. Move is a rename, so a blob appears whole or not at all.
type Filesystem struct {
	root string
	// keepsRename: a new file's first fsync after its rename makes its
	// new name durable (syncKeepsRename).
	keepsRename bool
}

// NewFilesystem returns a Filesystem driver rooted at dir, creating it.
func NewFilesystem(dir string) (*Filesystem, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("storage.root: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage.root: %w", err)
	}
	return &Filesystem{root: abs, keepsRename: syncKeepsRename(abs)}, nil
}

// path maps key to a file under root. Cleaning key as an absolute path
// first keeps ".." segments from climbing out of root.
func (f *Filesystem) path(key string) string {
	return filepath.Join(f.root, filepath.FromSlash(path.Clean("/"+key)))
}

// Reader implements Driver. The returned reader is an *os.File, so copying
// it to a network connection can use sendfile.
func (f *Filesystem) Reader(_ context.Context, key string, offset int64) (io.ReadCloser, error) {
	file, err := os.Open(f.path(key))
	if err != nil {
		return nil, notFound(err)
	}
	if offset > 0 {
		if _, err := file.Seek(offset, io.SeekStart); err != nil {
			file.Close()
			return nil, err
		}
	}
	return file, nil
}

// Stat implements Driver.
func (f *Filesystem) Stat(_ context.Context, key string) (int64, error) {
	fi, err := os.Stat(f.path(key))
	if err != nil {
		return 0, notFound(err)
	}
	return fi.Size(), nil
}

// Writer implements Driver. Its errors for lack of space are
// ErrStorageFull.
func (f *Filesystem) Writer(_ context.Context, key string, offset int64) (Writer, error) {
	w, err := f.writer(key, offset)
	return w, full(err)
}

func (f *Filesystem) writer(key string, offset int64) (Writer, error) {
	p := f.path(key)
	flag := os.O_WRONLY | os.O_CREATE
	if offset == 0 {
		flag |= os.O_TRUNC
	}
	var file *os.File
	made, err := inDir(p, func() (err error) {
		file, err = os.OpenFile(p, flag, 0o640)
		return err
	})
	if err == nil {
		err = syncDirs(made...)
	}
	if err != nil {
		if file != nil {
			file.Close()
		}
		return nil, err
	}
	if offset > 0 {
		if err := file.Truncate(offset); err != nil {
			file.Close()
			return nil, err
		}
		if _, err := file.Seek(offset, io.SeekStart); err != nil {
			file.Close()
			return nil, err
		}
	}
	return &fileWriter{File: file}, nil
}

type fileWriter struct {
	*os.File
	done bool
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.File.Write(p)
	return n, full(err)
}

// ReadFrom lets io.Copy use the kernel's copy paths when the source allows.
func (w *fileWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := w.File.ReadFrom(r)
	return n, full(err)
}

func (w *fileWriter) Commit() error {
	if w.done {
		return nil
	}
	w.done = true
	if err := w.File.Sync(); err != nil {
		w.File.Close()
		return full(err)
	}
	return full(w.File.Close())
}

func (w *fileWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.File.Close()
}

// Move implements Driver with a rename, then syncs the target directory so
// the new name survives a crash.
func (f *Filesystem) Move(_ context.Context, from, to string) error {
	dirs, err := f.moveUnsynced(from, to)
	if err == nil {
		err = full(syncDirs(dirs...))
	}
	return err
}

// unsyncedMover is a Driver whose moves can leave the syncs that make the
// new name durable to the caller.
type unsyncedMover interface {
	moveUnsynced(from, to string) (dirs []string, err error)
	moveBeforeSync(from, to string) (dirs []string, err error)
}

// moveUnsynced is Move but for the last step: the new name survives a
// crash only once the returned directories are synced, the target's and
// the parents of those the move created. A caller that records the move in
// metadata syncs them before the commit, and concurrent callers can share
// the syncs (committer.updateAfterSync).
func (f *Filesystem) moveUnsynced(from, to string) (dirs []string, err error) {
	dst := f.path(to)
	made, err := inDir(dst, func() error { return os.Rename(f.path(from), dst) })
	if err != nil {
		return nil, full(notFound(err))
	}
	return append(made, filepath.Dir(dst)), nil
}

// moveBeforeSync is moveUnsynced for a file created since its last fsync
// that the caller fsyncs after the move. Where that fsync makes the new
// name durable (ext4, XFS: syncKeepsRename), the directory the file lands
// in is left out of dirs, and with it a disk cache flush per blob. A move
// that made directories names them all, as moveUnsynced does: a new
// directory's own name is made durable by the sync of its parent.
func (f *Filesystem) moveBeforeSync(from, to string) (dirs []string, err error) {
	dirs, err = f.moveUnsynced(from, to)
	if err != nil || !f.keepsRename || len(dirs) > 1 {
		return dirs, err
	}
	return nil, nil
}

// inDir runs op, which creates the file at path, and when op fails because
// the file's directory is missing, creates the directory and runs op once
// more. It returns the parents of the directories it created: syncing them
// makes those durable, so that syncing a directory makes the names in it
// durable. Most directories exist: trying first saves checking each time.
func inDir(path string, op func() error) (made []string, err error) {
	err = op()
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// A rename whose source is missing fails so too, and fails again.
	if made, err = makeDirs(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return made, op()
}

// makeDirs is os.MkdirAll that returns the parent of each directory it
// made, outermost first: syncing them makes the new directories durable.
func makeDirs(dir string) ([]string, error) {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil, nil
	}
	var made []string
	if parent := filepath.Dir(dir); parent != dir {
		var err error
		if made, err = makeDirs(parent); err != nil {
			return nil, err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		// Made meanwhile by another call: synced here too, as this call
		// may return first.
		if fi, serr := os.Stat(dir); serr != nil || !fi.IsDir() {
			return nil, err
		}
	}
	return append(made, filepath.Dir(dir)), nil
}

// syncDirs makes the names in each of directories dirs durable.
func syncDirs(dirs ...string) error {
	for _, dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements Driver.
func (f *Filesystem) Delete(_ context.Context, key string) error {
	err := os.Remove(f.path(key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// WalkKeys implements keyLister with directory reads only.
func (f *Filesystem) WalkKeys(ctx context.Context, prefix string, fn func(key string) error) error {
	return f.walkFiles(ctx, prefix, func(key string, _ fs.DirEntry) error { return fn(key) })
}

// Walk implements Driver.
func (f *Filesystem) Walk(ctx context.Context, prefix string, fn func(key string, size int64) error) error {
	return f.walkFiles(ctx, prefix, func(key string, d fs.DirEntry) error {
		info, err := d.Info()
		if err != nil {
			return nil // removed while walking
		}
		return fn(key, info.Size())
	})
}

// walkFiles calls fn with the key of every file under prefix.
func (f *Filesystem) walkFiles(ctx context.Context, prefix string, fn func(key string, d fs.DirEntry) error) error {
	return filepath.WalkDir(f.path(prefix), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(f.root, p)
		if err != nil {
			return err
		}
		return fn(strings.ReplaceAll(filepath.ToSlash(rel), "\\", "/"), d)
	})
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
