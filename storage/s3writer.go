package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/minio/minio-go/v7"
)

// s3Writer appends to a key of the S3 driver. Bytes go to a spool file on
// local disk; each time the spool reaches the part size it is sent as the
// next segment in the background while the next spool fills. Commit sends
// what is left, then deletes the pieces the write replaced, last first, so
// that a crash at any point leaves a layout whose first committed bytes
// are right: the next Writer at the committed offset repairs the rest.
type s3Writer struct {
	s    *S3
	ctx  context.Context
	key  string
	next int     // number of the next segment
	keep []piece // pieces before the spool's first byte
	drop []piece // pieces replaced by this write, deleted at Commit
	sent []piece // segments this writer has sent

	f    *os.File // spool
	size int64    // bytes in the spool

	flush inFlight // the segment being sent, if any
	err   error
	done  bool

	direct *directPut // the write's one segment, streamed as it comes
}

// directPut streams a write of known length into one segment: the spool's
// bytes first, then every byte written, with no spooling on the way.
type directPut struct {
	pw   *io.PipeWriter
	want int64 // bytes the write announced
	got  int64
	done chan error
}

// Writer implements Driver. Writing at an offset inside the key keeps the
// pieces before it; a small last piece, or the part of a piece before the
// offset, is copied back into the spool so every segment but the last
// stays at least 5 MiB.
func (s *S3) Writer(ctx context.Context, key string, offset int64) (Writer, error) {
	return s.open(ctx, key, offset, -1)
}

// SizedWriter implements SizedWriter: a write of size bytes, known up
// front, goes up as one object streamed while it arrives, with no spool
// and no parts: the key's own object for a new key, which Seal leaves in
// place, else the next segment. If fewer bytes arrive, Commit fails and
// the key keeps what it had.
func (s *S3) SizedWriter(ctx context.Context, key string, offset, size int64) (Writer, error) {
	return s.open(ctx, key, offset, size)
}

func (s *S3) open(ctx context.Context, key string, offset, size int64) (Writer, error) {
	// Bytes a client sent before it went away are still committed.
	ctx = context.WithoutCancel(ctx)
	ps, err := s.layout(ctx, key)
	if err != nil {
		return nil, err
	}
	if have := total(ps); offset > have {
		return nil, fmt.Errorf("s3 writer %s at %d: only %d bytes stored", key, offset, have)
	}
	if len(ps) == 0 && size < 0 {
		// A new key of unknown length: one multipart upload of the key's
		// own object, which appears at Commit, so Seal has nothing to
		// copy.
		return s.AtomicWriter(ctx, key)
	}
	w := &s3Writer{s: s, ctx: ctx, key: key, next: 1}
	for _, p := range ps {
		w.next = max(w.next, p.seg+1)
	}
	var pos int64
	var reload []piece // pieces whose bytes before offset go back to the spool
	for _, p := range ps {
		switch {
		case pos+p.size <= offset:
			w.keep = append(w.keep, p)
		case pos < offset:
			reload = append(reload, piece{name: p.name, size: offset - pos})
			w.drop = append(w.drop, p)
		default:
			w.drop = append(w.drop, p)
		}
		pos += p.size
	}
	if n := len(w.keep); n > 0 && len(reload) == 0 && w.keep[n-1].size < minSegment {
		reload = append(reload, w.keep[n-1])
		w.drop = append([]piece{w.keep[n-1]}, w.drop...)
		w.keep = w.keep[:n-1]
	}
	if w.f, err = os.CreateTemp(s.spool, "part-*"); err != nil {
		return nil, err
	}
	fail := func(err error) (Writer, error) {
		w.Close()
		return nil, err
	}
	// The key's own object can only come first: once segments follow it,
	// it has to become a segment too, or a plain GET would read it alone.
	if len(w.keep) > 0 && w.keep[0].seg == 0 {
		obj := w.keep[0]
		seg := piece{name: s.object(segName(key, w.next)), size: obj.size, seg: w.next}
		w.next++
		_, err := s.client.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: seg.name},
			minio.CopySrcOptions{Bucket: s.bucket, Object: obj.name})
		if err != nil {
			return fail(s3Error("copy", key, err))
		}
		w.sent = append(w.sent, seg)
		w.keep[0] = seg
		w.drop = append([]piece{obj}, w.drop...)
	}
	for _, p := range reload {
		if err := w.reload(p); err != nil {
			return fail(err)
		}
	}
	if size > 0 && w.size+size <= maxPut {
		w.startDirect(size)
	}
	return w, nil
}

// startDirect starts the PUT of the one segment a write of size bytes
// makes, the spool's reloaded bytes first.
func (w *s3Writer) startDirect(size int64) {
	seg := piece{name: w.s.object(segName(w.key, w.next)), size: w.size + size, seg: w.next}
	if len(w.keep) == 0 && len(w.drop) == 0 {
		// A new key: its own object, which Seal then leaves in place.
		// The PUT replaces nothing, so a write cut short loses nothing.
		seg = piece{name: w.s.object(w.key), size: size}
	} else {
		w.next++
	}
	w.sent = append(w.sent, seg)
	pr, pw := io.Pipe()
	w.direct = &directPut{pw: pw, want: size, done: make(chan error, 1)}
	f, spooled := w.f, w.size
	w.f, w.size = nil, 0
	go func(done chan<- error) {
		defer removeSpool(f)
		body := io.MultiReader(io.NewSectionReader(f, 0, spooled), pr)
		_, err := w.s.core.PutObject(w.ctx, w.s.bucket, seg.name, body, seg.size, "", "",
			minio.PutObjectOptions{ContentType: "application/octet-stream"})
		pr.CloseWithError(errDirectEnded)
		done <- s3Error("put", w.key, err)
	}(w.direct.done)
}

// maxPut is the largest object S3 takes in one PUT.
const maxPut = 5 << 30

var (
	errDirectEnded = errors.New("s3 writer: segment upload ended")
	errDirectShort = errors.New("s3 writer: write ended before its announced length")
)

func (w *s3Writer) writeDirect(p []byte) (int, error) {
	d := w.direct
	if d.got+int64(len(p)) > d.want {
		return 0, fmt.Errorf("s3 writer: %d bytes past the announced %d", d.got+int64(len(p))-d.want, d.want)
	}
	n, err := d.pw.Write(p)
	d.got += int64(n)
	if err != nil {
		// The PUT ended early: its own error says why.
		if perr := <-d.done; perr != nil {
			err = perr
		}
		d.done <- err
	}
	return n, err
}

// finishDirect ends the segment's PUT: complete if every announced byte
// came, failed otherwise.
func (w *s3Writer) finishDirect() error {
	d := w.direct
	w.direct = nil
	if d.got != d.want {
		d.pw.CloseWithError(errDirectShort)
		<-d.done
		return fmt.Errorf("%w: %d of %d bytes", errDirectShort, d.got, d.want)
	}
	d.pw.Close()
	return <-d.done
}

// reload appends the first p.size bytes of object p.name to the spool.
func (w *s3Writer) reload(p piece) error {
	rc, _, _, err := w.s.core.GetObject(w.ctx, w.s.bucket, p.name, minio.GetObjectOptions{})
	if err != nil {
		return s3Error("get", w.key, err)
	}
	defer rc.Close()
	n, err := io.Copy(w.f, io.LimitReader(rc, p.size))
	w.size += n
	if err == nil && n != p.size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return s3Error("get", w.key, err)
	}
	return nil
}

func (w *s3Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errors.New("s3 writer: write after close")
	}
	if w.direct != nil {
		n, err := w.writeDirect(p)
		if err != nil {
			w.err = err
		}
		return n, err
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	if err != nil {
		w.err = full(err) // the spool is on local disk
		return n, w.err
	}
	if w.size >= w.s.partSize {
		if err := w.rotate(); err != nil {
			w.err = err
			return n, err
		}
	}
	return n, nil
}

// rotate sends the full spool as the next segment in the background and
// starts an empty one. At most one segment is in flight.
func (w *s3Writer) rotate() error {
	if err := w.flush.wait(); err != nil {
		return err
	}
	f, size := w.f, w.size
	seg := piece{name: w.s.object(segName(w.key, w.next)), size: size, seg: w.next}
	w.next++
	next, err := os.CreateTemp(w.s.spool, "part-*")
	if err != nil {
		return err
	}
	w.f, w.size = next, 0
	w.sent = append(w.sent, seg)
	w.flush.start(func() error { return w.s.putFile(w.ctx, w.key, seg.name, f, size) })
	return nil
}

// inFlight is at most one request sent in the background.
type inFlight struct{ done chan error }

// start sends in the background; wait for the previous request first.
func (b *inFlight) start(send func() error) {
	b.done = make(chan error, 1)
	go func() { b.done <- send() }()
}

// wait returns the result of the request in flight, if any.
func (b *inFlight) wait() error {
	if b.done == nil {
		return nil
	}
	err := <-b.done
	b.done = nil
	return err
}

// putFile sends size bytes of spool file f as object name, then removes f.
// The file is seekable, so the client retries a failed request.
func (s *S3) putFile(ctx context.Context, key, name string, f *os.File, size int64) error {
	defer removeSpool(f)
	_, err := s.core.PutObject(ctx, s.bucket, name, newSpoolReader(f, size), size, "", "",
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return s3Error("put", key, err)
}

// newSpoolReader reads size bytes of f from its start. It seeks, so the
// client can retry a request that failed midway.
func newSpoolReader(f *os.File, size int64) io.ReadSeeker { return io.NewSectionReader(f, 0, size) }

func removeSpool(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// Commit sends the rest of the spool and deletes the replaced pieces.
func (w *s3Writer) Commit() error {
	if w.done {
		return nil
	}
	if err := w.finish(); err != nil {
		w.Close()
		return err
	}
	w.done = true
	return nil
}

func (w *s3Writer) finish() error {
	if w.err != nil {
		return w.err
	}
	if w.direct != nil {
		if err := w.finishDirect(); err != nil {
			return err
		}
		return w.dropReplaced()
	}
	if err := w.flush.wait(); err != nil {
		return err
	}
	f := w.f
	w.f = nil
	switch {
	case len(w.keep) == 0 && len(w.sent) == 0:
		// Everything fits in one spool: store the key as one object,
		// replacing the old one in a single request.
		name := w.s.object(w.key)
		if err := w.s.putFile(w.ctx, w.key, name, f, w.size); err != nil {
			return err
		}
		for i, p := range w.drop {
			if p.name == name {
				w.drop = append(w.drop[:i:i], w.drop[i+1:]...)
				break
			}
		}
	case w.size > 0:
		seg := piece{name: w.s.object(segName(w.key, w.next)), size: w.size, seg: w.next}
		w.next++
		w.sent = append(w.sent, seg)
		if err := w.s.putFile(w.ctx, w.key, seg.name, f, w.size); err != nil {
			return err
		}
	default:
		removeSpool(f)
	}
	return w.dropReplaced()
}

// dropReplaced deletes the pieces the write replaced, last first.
func (w *s3Writer) dropReplaced() error {
	// The new pieces are in place: from here a failure leaves extra
	// pieces for the next Writer to drop, never a hole.
	w.sent = nil
	for i := len(w.drop) - 1; i >= 0; i-- {
		if err := w.s.removePieces(w.ctx, w.key, w.drop[i:i+1]); err != nil {
			return err
		}
	}
	return nil
}

// Close abandons an uncommitted write: the segments it sent are deleted
// and the key keeps its committed pieces.
func (w *s3Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.flush.wait()
	if d := w.direct; d != nil {
		d.pw.CloseWithError(errDirectShort)
		<-d.done
		w.direct = nil
	}
	if w.f != nil {
		removeSpool(w.f)
		w.f = nil
	}
	w.s.removePieces(w.ctx, w.key, w.sent)
	return nil
}
