package mirror

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/nora-registry/nora/trust"
)

// ErrUpstreamUnavailable means the upstream did not answer, timed out,
// answered 5xx or 429, refused the registry's credentials, or sent bytes
// that fail verification; the request may succeed later.
var ErrUpstreamUnavailable = errors.New("upstream registry unavailable")

// errUpstreamNotFound means the upstream answered 404.
var errUpstreamNotFound = errors.New("not found upstream")

// client talks to one upstream. Its transports carry the upstream's
// credentials only; it never sees the client request's headers.
type client struct {
	up   *Upstream
	reg  name.Registry
	auth authn.Authenticator
	base http.RoundTripper

	metrics *metrics

	mu  sync.Mutex
	rts map[string]http.RoundTripper // by upstream repository, tokens cached inside
}

func newClient(u *Upstream, m *metrics) (*client, error) {
	p, err := url.Parse(u.URL)
	if err != nil {
		return nil, err
	}
	var opts []name.Option
	if p.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(p.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mirror upstream %s: %w", u.Name, err)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if u.CAFile != "" {
		pool, err := trust.Pool(u.CAFile)
		if err != nil {
			return nil, err
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	a := authn.Anonymous
	if u.Username != "" {
		a = &authn.Basic{Username: u.Username, Password: u.Password}
	}
	return &client{up: u, reg: reg, auth: a, base: t, metrics: m, rts: map[string]http.RoundTripper{}}, nil
}

// transport returns the round tripper for pulls from repo, doing the
// upstream's auth handshake on first use.
func (c *client) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	c.mu.Lock()
	rt := c.rts[repo]
	c.mu.Unlock()
	if rt != nil {
		return rt, nil
	}
	scope := c.reg.Repo(repo).Scope(transport.PullScope)
	rt, err := transport.NewWithContext(ctx, c.reg, c.auth, c.base, []string{scope})
	c.metrics.countRequest(c.up, err)
	if err != nil {
		return nil, classify(err)
	}
	c.mu.Lock()
	c.rts[repo] = rt
	c.mu.Unlock()
	return rt, nil
}

// do sends method to /v2/<repo>/<kind>/<ref> upstream and returns the
// response if it is a 200; the caller closes its body.
func (c *client) do(ctx context.Context, method, repo, kind, ref string, accept []string) (*http.Response, error) {
	rt, err := c.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	u := strings.TrimSuffix(c.up.URL, "/") + "/v2/" + repo + "/" + kind + "/" + ref
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	for _, a := range accept {
		req.Header.Add("Accept", a)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err == nil {
		if err = transport.CheckError(resp, http.StatusOK); err != nil {
			resp.Body.Close()
		}
	}
	c.metrics.countRequest(c.up, err)
	if err != nil {
		return nil, classify(err)
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, c: c.metrics.bytes.WithLabelValues(c.up.Name)}
	return resp, nil
}

// classify turns an upstream failure into errUpstreamNotFound or
// ErrUpstreamUnavailable, keeping its text for the log and, for a 404,
// the upstream's error codes for goneUpstream.
func classify(err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %w", errUpstreamNotFound, err)
	}
	return fmt.Errorf("%w: %v", ErrUpstreamUnavailable, err)
}

// goneUpstream reports whether err is an upstream 404 with the code
// MANIFEST_UNKNOWN or NAME_UNKNOWN: the upstream's answer that the
// manifest or repository does not exist. A 404 without them (a proxy's
// page, a HEAD, which has no body) proves nothing.
func goneUpstream(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusNotFound {
		return false
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// readLimited reads at most limit bytes of r, failing beyond.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the response: %v", ErrUpstreamUnavailable, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: response exceeds %d bytes", ErrUpstreamUnavailable, limit)
	}
	return b, nil
}
