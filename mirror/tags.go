package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// maxTagList bounds an upstream's tag list response.
const maxTagList = 16 << 20

// Tags lists the tags of rt as the upstream has them, paginated by last
// and n (n < 0: the upstream's default page), more reporting that the
// upstream has further pages. When the upstream fails or does not know
// the repository, the cached tags are listed instead, as the Store lists
// them.
func (m *Mirror) Tags(ctx context.Context, rt Route, last string, n int) (tags []string, more bool, err error) {
	tags, more, err = m.upstreamTags(ctx, rt, last, n)
	if err == nil {
		return tags, more, nil
	}
	m.log.Warn().Err(err).Str("upstream", rt.Upstream.Name).Str("repository", rt.Local).Msg("listing tags from the cache")
	return m.store.Tags(ctx, rt.Local, last, n)
}

func (m *Mirror) upstreamTags(ctx context.Context, rt Route, last string, n int) ([]string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, rt.Upstream.fetchTimeout())
	defer cancel()
	q := url.Values{}
	if n >= 0 {
		q.Set("n", strconv.Itoa(n))
	}
	if last != "" {
		q.Set("last", last)
	}
	ref := "list"
	if len(q) > 0 {
		ref += "?" + q.Encode()
	}
	resp, err := m.clients[rt.Upstream].do(ctx, http.MethodGet, rt.Repo, "tags", ref, nil)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, maxTagList)
	if err != nil {
		return nil, false, err
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, false, fmt.Errorf("%w: tag list: %v", ErrUpstreamUnavailable, err)
	}
	if list.Tags == nil {
		list.Tags = []string{}
	}
	// Not every registry sends a Link header: a full page may be
	// followed by more, and at worst the next page is empty.
	more := resp.Header.Get("Link") != "" || (n > 0 && len(list.Tags) >= n)
	if n >= 0 && len(list.Tags) > n {
		list.Tags = list.Tags[:n]
	}
	return list.Tags, more, nil
}
