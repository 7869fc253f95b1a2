package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// Blob brings blob d of rt into the cache, from upstream. Concurrent
// calls for one blob of one repository share a single upstream GET: the
// first caller leads it, the others wait until the blob is committed (or
// the fetch failed) and then read the cache like any warm blob.
//
// When send is not nil and this call leads, the blob is also streamed to
// the client as it arrives: send is called once with the upstream's
// Content-Length (-1 if unknown) and returns where the bytes go. Errors
// writing there are ignored, so a client that leaves does not stop the
// fetch. The last byte is held back until storage verified the digest,
// so a client never receives a whole blob that does not match.
//
// sent reports whether send was called. If so and err is not nil, the
// response is incomplete and the caller must cut the connection. If sent is
// false and err is nil, the blob is in the cache. A blob upstream does not
// have is storage.ErrBlobNotFound.
func (m *Mirror) Blob(ctx context.Context, rt Route, d digest.Digest, send func(size int64) io.Writer) (sent bool, err error) {
	defer m.Pulling(rt)()
	_, leader, err := m.flights.do("blob "+rt.Local+"@"+string(d), func() (string, error) {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		idle := time.AfterFunc(rt.Upstream.blobIdleTimeout(), cancel)
		defer idle.Stop()
		resp, err := m.clients[rt.Upstream].do(fctx, http.MethodGet, rt.Repo, "blobs", string(d), nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var body io.Reader = &idleReader{r: resp.Body, t: idle, d: rt.Upstream.blobIdleTimeout()}
		var hw *holdback
		if send != nil {
			hw = &holdback{w: send(resp.ContentLength), size: resp.ContentLength}
			sent = true
			body = io.TeeReader(body, hw)
		}
		info, err := m.store.PutBlob(fctx, rt.Local, d, resp.ContentLength, body)
		if err != nil {
			if errors.Is(err, storage.ErrDigestMismatch) || errors.Is(err, storage.ErrSizeMismatch) {
				m.metrics.errors.WithLabelValues(rt.Upstream.Name, "digest").Inc()
				return "", fmt.Errorf("%w: blob %s: %v", ErrUpstreamUnavailable, d, err)
			}
			return "", err
		}
		m.stored(rt.Upstream, info.Size)
		if hw != nil {
			hw.release()
		}
		return "", nil
	})
	if err == nil {
		m.count(rt, resultMiss)
	}
	if err != nil {
		m.log.Warn().Err(err).Str("upstream", rt.Upstream.Name).Str("repository", rt.Local).Str("digest", string(d)).
			Bool("leader", leader).Msg("upstream blob fetch failed")
	}
	if errors.Is(err, errUpstreamNotFound) {
		err = fmt.Errorf("%w: %s@%s upstream", storage.ErrBlobNotFound, rt.Repo, d)
	}
	return sent, err
}

// holdback passes bytes on to w but keeps the blob's last byte until
// release, and ignores w's errors from the first one on.
type holdback struct {
	w       io.Writer
	size    int64 // -1 if unknown: nothing is held back
	n       int64 // bytes seen
	last    []byte
	written int64
	failed  bool
}

func (h *holdback) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	out := p
	if h.size > 0 && h.n >= h.size {
		keep := h.n - (h.size - 1) // bytes of p at or past the last byte
		keep = min(keep, int64(len(p)))
		out, h.last = p[:int64(len(p))-keep], append(h.last, p[int64(len(p))-keep:]...)
	}
	h.pass(out)
	return len(p), nil
}

func (h *holdback) release() { h.pass(h.last) }

func (h *holdback) pass(p []byte) {
	if h.failed || len(p) == 0 {
		return
	}
	if _, err := h.w.Write(p); err != nil {
		h.failed = true
	}
}

// idleReader restarts the idle timer t, of d, on every read that brings
// bytes.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.t.Reset(i.d)
	}
	return n, err
}

// BlobSize answers for cold blob d of rt with a HEAD upstream, without
// fetching the blob: its size, or -1 if the upstream did not say. A blob
// upstream does not have is storage.ErrBlobNotFound.
func (m *Mirror) BlobSize(ctx context.Context, rt Route, d digest.Digest) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, rt.Upstream.revalidateTimeout())
	defer cancel()
	resp, err := m.clients[rt.Upstream].do(ctx, http.MethodHead, rt.Repo, "blobs", string(d), nil)
	if err == nil {
		resp.Body.Close()
		if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != string(d) {
			err = fmt.Errorf("%w: HEAD of blob %s answered digest %q", ErrUpstreamUnavailable, d, got)
		}
	}
	if errors.Is(err, errUpstreamNotFound) {
		return -1, fmt.Errorf("%w: %s@%s upstream", storage.ErrBlobNotFound, rt.Repo, d)
	}
	if err != nil {
		m.log.Warn().Err(err).Str("upstream", rt.Upstream.Name).Str("repository", rt.Local).Str("digest", string(d)).
			Msg("upstream blob HEAD failed")
		return -1, err
	}
	return resp.ContentLength, nil
}
