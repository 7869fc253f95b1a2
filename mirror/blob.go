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
// calls for one blob of one repository share a single upstream GET, which
// runs detached from the client that started it, so a client that leaves
// does not stop it.
//
// When send is not nil, the blob is also streamed to the client as it
// arrives: send is called once with the upstream's Content-Length (-1 if
// unknown) and returns where the bytes go. Every caller streams from what
// storage has written so far, at its own pace, from the first byte
// however late it came, so a slow client slows neither the fetch nor the
// others. The last byte is held back until storage verified the digest,
// so a client never receives a whole blob that does not match.
//
// sent reports whether send was called. If so and err is not nil, the
// response is incomplete and the caller must cut the connection. If sent is
// false and err is nil, the blob is in the cache. A blob upstream does not
// have is storage.ErrBlobNotFound.
func (m *Mirror) Blob(ctx context.Context, rt Route, d digest.Digest, send func(size int64) io.Writer) (sent bool, err error) {
	defer m.Pulling(rt)()
	key := "blob " + rt.Local + "@" + string(d)
	f, leader := m.fetches.join(key)
	if leader {
		// The caller's look in the cache may have missed just before
		// another fetch of d ended: that one stored it.
		if _, err := m.store.StatBlob(ctx, rt.Local, d); err == nil {
			m.fetches.end(key, f, nil)
			m.CountHit(rt)
			return false, nil
		}
		m.goFetch(ctx, rt, f, func(fctx context.Context) {
			m.fetches.end(key, f, m.fetchBlob(fctx, rt, d, f))
		})
	}
	if send != nil {
		sent, err = f.follow(ctx, send)
	}
	if send == nil || errors.Is(err, errFetchEnded) {
		sent, err = false, f.wait(ctx)
	}
	if err == nil {
		m.count(rt, joined(leader, resultMiss))
	}
	if err != nil && ctx.Err() == nil {
		m.log.Warn().Err(err).Str("upstream", rt.Upstream.Name).Str("repository", rt.Local).Str("digest", string(d)).
			Bool("leader", leader).Msg("upstream blob fetch failed")
	}
	if errors.Is(err, errUpstreamNotFound) {
		err = fmt.Errorf("%w: %s@%s upstream", storage.ErrBlobNotFound, rt.Repo, d)
	}
	return sent, err
}

// fetchBlob GETs blob d of rt from upstream into the store, telling f how
// far it got.
func (m *Mirror) fetchBlob(ctx context.Context, rt Route, d digest.Digest, f *fetch) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(rt.Upstream.blobIdleTimeout(), cancel)
	defer idle.Stop()
	resp, err := m.clients[rt.Upstream].do(fctx, http.MethodGet, rt.Repo, "blobs", string(d), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f.setSize(resp.ContentLength)
	body := &idleReader{r: resp.Body, t: idle, d: rt.Upstream.blobIdleTimeout()}
	info, err := m.store.PutBlobTap(fctx, rt.Local, d, resp.ContentLength, body, f)
	if err != nil {
		if errors.Is(err, storage.ErrDigestMismatch) || errors.Is(err, storage.ErrSizeMismatch) {
			m.metrics.errors.WithLabelValues(rt.Upstream.Name, "digest").Inc()
			return fmt.Errorf("%w: blob %s: %v", ErrUpstreamUnavailable, d, err)
		}
		return err
	}
	m.stored(rt.Upstream, info.Size)
	return nil
}

// goFetch runs fetch, which fills f, in the background, detached from
// ctx's cancellation but keeping its values. Close cancels it, unless its
// bytes are verified already (clients may have them: the commit that
// follows is short), and waits for it. rt counts as being pulled while it
// runs, so eviction spares it.
func (m *Mirror) goFetch(ctx context.Context, rt Route, f *fetch, fetch func(ctx context.Context)) {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(m.bg, cancel)
	f.onVerified = func() { stop() }
	done := m.Pulling(rt)
	m.bgMu.Lock()
	defer m.bgMu.Unlock()
	if m.closed {
		cancel()
	}
	m.bgWG.Add(1)
	go func() {
		defer m.bgWG.Done()
		defer done()
		defer stop()
		defer cancel()
		fetch(fctx)
	}()
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
