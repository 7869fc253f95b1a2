package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// listTags lists a repository's tags in lexical order, paginated by n and
// last.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags
func (h *handler) listTags(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	n, last, err := pagination(r)
	if err != nil {
		return err
	}
	var tags []string
	var more bool
	if rt, ok := mirrorRoute(r); ok {
		tags, more, err = h.mirror.Tags(r.Context(), rt, last, n)
	} else {
		tags, more, err = h.store.Tags(r.Context(), name, last, n)
	}
	if err != nil {
		return err
	}
	if more && len(tags) > 0 {
		if n < 0 { // the upstream's default page size
			n = len(tags)
		}
		setNextLink(w, "/v2/"+name+"/tags/list", tags[len(tags)-1], n)
	}
	return writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, tags})
}

// catalog lists repositories in lexical order, paginated by n and last.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-repositories
func (h *handler) catalog(w http.ResponseWriter, r *http.Request) error {
	n, last, err := pagination(r)
	if err != nil {
		return err
	}
	var repos []string
	var more bool
	if h.authz == nil {
		repos, more, err = h.store.Repositories(r.Context(), last, n)
	} else {
		repos, more, err = h.pullableRepositories(w, r, last, n)
	}
	if err != nil {
		return err
	}
	if more {
		setNextLink(w, "/v2/_catalog", repos[len(repos)-1], n)
	}
	return writeJSON(w, r, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// pullableRepositories pages through the repositories the caller may pull,
// so the catalog never names one the caller cannot read.
func (h *handler) pullableRepositories(w http.ResponseWriter, r *http.Request, last string, n int) ([]string, bool, error) {
	out := []string{}
	if n == 0 {
		return out, false, nil
	}
	hidden := 0
	defer func() {
		if hidden > 0 {
			requestLog(w, r).Debug().Int("hidden", hidden).Msg("catalog filtered repositories the caller cannot pull")
		}
	}()
	for {
		page, more, err := h.store.Repositories(r.Context(), last, 1000)
		if err != nil {
			return nil, false, err
		}
		for _, repo := range page {
			if !h.lists(r, repo) {
				hidden++
				continue
			}
			if n >= 0 && len(out) == n {
				return out, true, nil
			}
			out = append(out, repo)
		}
		if !more {
			return out, false, nil
		}
		last = page[len(page)-1]
	}
}

// pagination reads n (-1 when absent: everything) and last.
func pagination(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	n = -1
	if s := q.Get("n"); s != "" {
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			return 0, "", apiError(CodePaginationInvalid, "n must be a non-negative integer")
		}
	}
	return n, q.Get("last"), nil
}

func setNextLink(w http.ResponseWriter, path, last string, n int) {
	q := url.Values{"last": {last}, "n": {strconv.Itoa(n)}}
	w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return nil
}
