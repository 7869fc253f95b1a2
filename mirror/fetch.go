package mirror

import (
	"context"
	"errors"
	"io"
	"sync"
)

// errFetchEnded is what a follower gets when the fetch ended before it
// could open the upload: it then waits for the outcome and reads the
// cache.
var errFetchEnded = errors.New("mirror: blob fetch ended")

// fetch is one upstream GET of a blob being stored, shared by every
// request for that blob while it runs. Requests read the bytes from
// storage's copy as they are written (see storage.BlobTap), each at its
// own pace, so a slow client slows neither the fetch nor the others, and
// one that comes late starts with what has arrived. It is the BlobTap of
// the fetch's PutBlobTap.
type fetch struct {
	done chan struct{} // closed when the fetch ended; err is then set
	err  error

	mu sync.Mutex
	// changed is closed, and replaced, at every change below.
	changed  chan struct{}
	size     int64                              // upstream Content-Length, -1 if unknown
	read     func(int64) (io.ReadCloser, error) // nil until Opened, and again from Verified on
	written  int64
	verified bool
	// onVerified, if set, runs when the bytes are verified.
	onVerified func()
}

func newFetch() *fetch {
	return &fetch{done: make(chan struct{}), changed: make(chan struct{}), size: -1}
}

// update changes the fetch under its lock and wakes its followers.
func (f *fetch) update(change func()) {
	f.mu.Lock()
	change()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Opened, Wrote and Verified implement storage.BlobTap.
func (f *fetch) Opened(read func(int64) (io.ReadCloser, error)) {
	f.update(func() { f.read = read })
}

func (f *fetch) Wrote(n int64) { f.update(func() { f.written = n }) }

// Verified ends the window in which followers may open the upload: the
// store moves it next. Those already reading keep their open file.
func (f *fetch) Verified() {
	f.update(func() { f.verified, f.read = true, nil })
	if f.onVerified != nil {
		f.onVerified()
	}
}

func (f *fetch) setSize(n int64) { f.update(func() { f.size = n }) }

// wait waits for the fetch to end, or ctx.
func (f *fetch) wait(ctx context.Context) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// follow streams the blob to the writer send returns, from the upload, as
// it is written; the last byte only once verified. It returns
// errFetchEnded, with nothing sent, if the upload could not be opened
// (the fetch failed or got too far); else sent is true and a non-nil
// error means the response is incomplete.
func (f *fetch) follow(ctx context.Context, send func(size int64) io.Writer) (sent bool, err error) {
	var rc io.ReadCloser
	var size int64
	for rc == nil {
		f.mu.Lock()
		read, verified, changed := f.read, f.verified, f.changed
		size = f.size
		if read != nil {
			rc, err = read(0)
		}
		f.mu.Unlock()
		switch {
		case err != nil, verified:
			return false, errFetchEnded
		case rc != nil:
		default:
			select {
			case <-changed:
			case <-f.done:
				return false, errFetchEnded
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
	}
	defer rc.Close()
	w := send(size)
	buf := make([]byte, 32<<10)
	var pos int64
	ended := false
	for {
		f.mu.Lock()
		written, verified, changed := f.written, f.verified, f.changed
		f.mu.Unlock()
		if ended && !verified {
			return true, errFetchEnded
		}
		limit := written
		if !verified {
			// Hold back the last byte: a client never receives a whole
			// blob that does not match its digest.
			limit = written - 1
			if size >= 0 {
				limit = min(written, size-1)
			}
		}
		if limit > pos {
			// CopyBuffer keeps net/http's sendfile path from the file;
			// buf serves only writers without one.
			n, err := io.CopyBuffer(w, io.LimitReader(rc, limit-pos), buf)
			pos += n
			if err != nil {
				return true, err
			}
			continue
		}
		if verified {
			return true, nil
		}
		select {
		case <-changed:
		case <-f.done:
			if f.err != nil {
				return true, f.err
			}
			ended = true
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

// fetches holds the blob fetches running, by key.
type fetches struct {
	mu sync.Mutex
	m  map[string]*fetch
}

// join returns the fetch of key, and whether it is new: then the caller
// runs it and ends it.
func (fs *fetches) join(key string) (f *fetch, isNew bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key]; ok {
		return f, false
	}
	if fs.m == nil {
		fs.m = map[string]*fetch{}
	}
	f = newFetch()
	fs.m[key] = f
	return f, true
}

// end ends fetch f of key with err.
func (fs *fetches) end(key string, f *fetch, err error) {
	fs.mu.Lock()
	delete(fs.m, key)
	fs.mu.Unlock()
	f.err = err
	close(f.done)
	f.update(func() { f.read = nil })
}
