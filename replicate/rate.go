package replicate

import (
	"context"
	"io"
	"net/http"

	"golang.org/x/time/rate"
)

// limited caps the bytes of request and response bodies that go through
// it, together, at one limiter's rate: a remote's max_rate is shared by
// all its transfers, up and down.
type limited struct {
	next http.RoundTripper
	lim  *rate.Limiter
}

// newLimiter returns a limiter of bytesPerSec, or nil for no cap. Its
// burst is small so the rate holds over seconds, not minutes.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), int(min(bytesPerSec, 32<<10)))
}

// RoundTrip sends req with its body and its response's body paced.
func (l *limited) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(ctx)
		req.Body = &pacedBody{ReadCloser: req.Body, ctx: ctx, lim: l.lim}
	}
	resp, err := l.next.RoundTrip(req)
	if err == nil && resp.Body != nil {
		resp.Body = &pacedBody{ReadCloser: resp.Body, ctx: ctx, lim: l.lim}
	}
	return resp, err
}

// pacedBody waits for the limiter before handing out each read's bytes.
type pacedBody struct {
	io.ReadCloser
	ctx context.Context
	lim *rate.Limiter
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if len(p) > b.lim.Burst() {
		p = p[:b.lim.Burst()]
	}
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if werr := b.lim.WaitN(b.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}
