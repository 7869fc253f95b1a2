package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Limits of a resumed blob transfer.
const (
	// resumeStalls is how many cut transfers in a row that moved no byte
	// end a blob's copy.
	resumeStalls = 4
	// resumeBackoff is the first wait before a resumed transfer; it
	// doubles up to resumeBackoffMax.
	resumeBackoff    = 100 * time.Millisecond
	resumeBackoffMax = 5 * time.Second
)

// errResume is a transfer cut on either side: the copy goes on from
// where the target's upload stopped.
var errResume = errors.New("transfer cut")

// resumable copies one blob over plain HTTP, as a chunked upload whose
// progress the target reports, so a link that drops costs only what was
// in flight: the source is read again from the target's offset (Range)
// and the upload goes on from there (the distribution spec's resumable
// upload). Both transports authenticate as the endpoints do.
type resumable struct {
	src, dst   http.RoundTripper
	srcBlob    string // URL of the blob on the source
	dstUploads string // URL of the target repository's uploads
	desc       v1.Descriptor
	add        func(int)
}

// newResumable sets up the copy of blob b from srcRepo to dstRepo.
func (c *copier) newResumable(ctx context.Context, srcRepo, dstRepo name.Repository, b v1.Descriptor, add func(int)) (*resumable, error) {
	src, err := endpointTransport(ctx, c.job.From, srcRepo, transport.PullScope)
	if err != nil {
		return nil, err
	}
	dst, err := endpointTransport(ctx, c.job.To, dstRepo, transport.PushScope)
	if err != nil {
		return nil, err
	}
	return &resumable{
		src: src, dst: dst, desc: b, add: add,
		srcBlob:    repoURL(srcRepo) + "/blobs/" + b.Digest.String(),
		dstUploads: repoURL(dstRepo) + "/blobs/uploads/",
	}, nil
}

// endpointTransport is e's transport, authenticated for scope on repo.
func endpointTransport(ctx context.Context, e Endpoint, repo name.Repository, scope string) (http.RoundTripper, error) {
	base := e.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	auth := e.Auth
	if auth == nil {
		var err error
		if auth, err = authn.DefaultKeychain.Resolve(repo.Registry); err != nil {
			return nil, err
		}
	}
	return transport.NewWithContext(ctx, repo.Registry, auth, base, []string{repo.Scope(scope)})
}

func repoURL(r name.Repository) string {
	return r.Registry.Scheme() + "://" + r.RegistryStr() + "/v2/" + r.RepositoryStr()
}

// run copies the blob, resuming after each cut transfer.
func (r *resumable) run(ctx context.Context) error {
	loc, err := r.start(ctx)
	if err != nil {
		return err
	}
	var offset int64
	stalls, wait := 0, resumeBackoff
	for {
		next, err := r.send(ctx, loc, offset)
		if err == nil {
			return r.finish(ctx, next)
		}
		if !errors.Is(err, errResume) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, resumeBackoffMax)
		got, serr := r.status(ctx, loc)
		if serr != nil {
			return fmt.Errorf("%v; asking the target how much it got: %w", err, serr)
		}
		if got > offset {
			stalls, wait = 0, resumeBackoff
		} else if stalls++; stalls >= resumeStalls {
			return fmt.Errorf("%d transfers in a row moved nothing: %w", stalls, err)
		}
		offset = got
	}
}

// start opens an upload session on the target and returns its URL.
func (r *resumable) start(ctx context.Context) (string, error) {
	resp, err := r.do(ctx, r.dst, http.MethodPost, r.dstUploads, nil, nil, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	return location(resp)
}

// send streams the blob from offset to upload loc and returns the
// session's next URL. A cut on either side is errResume.
func (r *resumable) send(ctx context.Context, loc string, offset int64) (string, error) {
	hdr := http.Header{}
	if offset > 0 {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	src, err := r.do(ctx, r.src, http.MethodGet, r.srcBlob, hdr, nil, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return "", err
	}
	defer src.Body.Close()
	var body io.Reader = src.Body
	if offset > 0 && src.StatusCode == http.StatusOK { // Range ignored
		if _, err := io.CopyN(io.Discard, body, offset); err != nil {
			return "", fmt.Errorf("%w: %v", errResume, err)
		}
	}
	n := r.desc.Size - offset
	cut := &cutReader{r: io.LimitReader(body, n), add: r.add}
	hdr = http.Header{"Content-Type": {"application/octet-stream"}}
	if n > 0 {
		hdr.Set("Content-Range", fmt.Sprintf("%d-%d", offset, r.desc.Size-1))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, loc, cut)
	if err != nil {
		return "", err
	}
	req.Header, req.ContentLength = hdr, n
	resp, err := r.dst.RoundTrip(req)
	switch {
	case err != nil || cut.err != nil:
		return "", fmt.Errorf("%w: %v", errResume, errors.Join(err, cut.err))
	case resp.StatusCode == http.StatusAccepted:
		resp.Body.Close()
		return location(resp)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return "", fmt.Errorf("%w: PATCH answered %s", errResume, resp.Status)
	}
	return "", transport.CheckError(resp, http.StatusAccepted)
}

// status asks the target how many bytes upload loc holds.
func (r *resumable) status(ctx context.Context, loc string) (int64, error) {
	resp, err := r.do(ctx, r.dst, http.MethodGet, loc, nil, nil, http.StatusNoContent)
	if err != nil {
		return 0, err
	}
	rg := resp.Header.Get("Range")
	if rg == "" {
		return 0, nil
	}
	_, end, ok := strings.Cut(strings.TrimPrefix(rg, "bytes="), "-")
	last, err := strconv.ParseInt(end, 10, 64)
	if !ok || err != nil || last < -1 || last >= r.desc.Size {
		return 0, fmt.Errorf("upload status: Range %q", rg)
	}
	return last + 1, nil
}

// finish ends upload loc with the blob's digest.
func (r *resumable) finish(ctx context.Context, loc string) error {
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", r.desc.Digest.String())
	u.RawQuery = q.Encode()
	_, err = r.do(ctx, r.dst, http.MethodPut, u.String(), nil, nil, http.StatusCreated)
	return err
}

// do sends a request whose body is read in full and closed, but for a
// GET, whose body the caller reads and closes.
func (r *resumable) do(ctx context.Context, rt http.RoundTripper, method, u string, hdr http.Header, body io.Reader, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if hdr != nil {
		req.Header = hdr
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errResume, method, err)
	}
	if err := transport.CheckError(resp, want...); err != nil {
		resp.Body.Close()
		return nil, err
	}
	if method != http.MethodGet || resp.StatusCode == http.StatusNoContent {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, nil
}

// location resolves a response's Location against its request.
func location(resp *http.Response) (string, error) {
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("upload: %s without a Location: %v", resp.Status, err)
	}
	return loc.String(), nil
}

// cutReader counts what it passes on and keeps the source's read error,
// so a cut on the source side is told from one on the target's.
type cutReader struct {
	r   io.Reader
	add func(int)
	err error
}

func (c *cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && c.add != nil {
		c.add(n)
	}
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}
