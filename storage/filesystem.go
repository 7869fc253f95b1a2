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
	return &Filesystem{root: abs}, nil
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
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, err
	}
	flag := os.O_WRONLY | os.O_CREATE
	if offset == 0 {
		flag |= os.O_TRUNC
	}
	file, err := os.OpenFile(p, flag, 0o640)
	if err != nil {
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
	return full(f.move(from, to))
}

func (f *Filesystem) move(from, to string) error {
	dst := f.path(to)
	made, err := makeDirs(filepath.Dir(dst))
	if err != nil {
		return err
	}
	if err := os.Rename(f.path(from), dst); err != nil {
		return notFound(err)
	}
	// The new name, and the name of each directory made for it (a blob's
	// first fan-out directory blobs/sha256/ab, say), in its parent.
	for _, dir := range append(made, filepath.Dir(dst)) {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
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
