package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// maxReferrers bounds an upstream's referrers index.
const maxReferrers = 4 << 20

// indexType is the media type of a referrers response.
const indexType = "application/vnd.oci.image.index.v1+json"

// Referrers returns the referrers index of subject d in rt as the
// upstream sends it, asking for artifactType only if it is not empty, and
// the upstream's OCI-Filters-Applied header. Concurrent calls for one
// subject and filter share one upstream request. The index is not cached:
// the referring manifests are, when a client pulls them. An error (the
// upstream failed, lacks the referrers API, or failed within the last
// 10s) tells the caller to answer from the cache.
func (m *Mirror) Referrers(ctx context.Context, rt Route, d digest.Digest, artifactType string) (index []byte, filters string, err error) {
	ref := string(d)
	if artifactType != "" {
		ref += "?" + url.Values{"artifactType": {artifactType}}.Encode()
	}
	key := "referrers " + rt.Local + "@" + ref
	if m.failedRecently(key, rt.Upstream) {
		return nil, "", fmt.Errorf("%w: referrers failed within %s", ErrUpstreamUnavailable, rt.Upstream.staleRetry())
	}
	// The shared result is the filters header, a newline, then the
	// index: a header value holds no newline.
	val, _, err := m.flights.do(key, func() (string, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rt.Upstream.revalidateTimeout())
		defer cancel()
		body, filters, err := m.upstreamReferrers(fctx, rt, ref)
		return filters + "\n" + string(body), err
	})
	if err != nil {
		m.failed.Store(key, time.Now())
		m.log.Warn().Err(err).Str("upstream", rt.Upstream.Name).Str("repository", rt.Local).Str("digest", string(d)).
			Msg("listing referrers from the cache")
		return nil, "", err
	}
	m.failed.Delete(key)
	filters, body, _ := strings.Cut(val, "\n")
	return []byte(body), filters, nil
}

func (m *Mirror) upstreamReferrers(ctx context.Context, rt Route, ref string) ([]byte, string, error) {
	resp, err := m.clients[rt.Upstream].do(ctx, http.MethodGet, rt.Repo, "referrers", ref, []string{indexType})
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, maxReferrers)
	if err != nil {
		return nil, "", err
	}
	// Passed on as is, but only if it is an index: a proxy's error page
	// with status 200 is not.
	var idx struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(body, &idx); err != nil || idx.MediaType != indexType || idx.Manifests == nil {
		return nil, "", fmt.Errorf("%w: referrers of %s: not an image index", ErrUpstreamUnavailable, ref)
	}
	return body, strings.ReplaceAll(resp.Header.Get("OCI-Filters-Applied"), "\n", ""), nil
}
