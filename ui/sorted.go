package ui

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nora-registry/nora/registry"
)

// RepoSummary is a repository's figures in a sorted list, as of the
// overview's last count (at most 15 s old).
type RepoSummary struct {
	Name string `json:"name"`
	Tags int    `json:"tags"`
	// Size is its manifests' and linked blobs' bytes; blobs it shares
	// with other repositories count in each.
	Size   int64      `json:"size"`
	Pushed *time.Time `json:"pushed,omitempty"`
	Pulled *time.Time `json:"pulled,omitempty"`
}

// sortKeys are the orders a repository list takes besides by name, each
// largest or latest first.
var sortKeys = []string{"size", "pushed", "pulled"}

// listRepositories reads ?q=, ?n=, ?last= and, for another order than by
// name, ?sort= and ?offset=, and lists the repositories c may pull.
func (h *Handler) listRepositories(r *http.Request, c caller) (RepoList, error) {
	n, last, err := pageArgs(r)
	if err != nil {
		return RepoList{}, err
	}
	q := r.URL.Query()
	sort := q.Get("sort")
	if sort == "" || sort == "name" {
		return h.repositories(r.Context(), c, q.Get("q"), last, n)
	}
	if !slices.Contains(sortKeys, sort) {
		return RepoList{Query: q.Get("q"), Repositories: []string{}}, apiError(codeInvalid, "sort must be one of name, "+strings.Join(sortKeys, ", "))
	}
	offset := 0
	if s := q.Get("offset"); s != "" {
		if offset, err = strconv.Atoi(s); err != nil || offset < 0 {
			return RepoList{}, apiError(registry.CodePaginationInvalid, "offset must be a number from 0 up")
		}
	}
	return h.sortedRepositories(r.Context(), c, q.Get("q"), sort, offset, n)
}

// sortedRepositories lists n repositories from offset, in order of sort,
// from the overview's counts.
func (h *Handler) sortedRepositories(ctx context.Context, c caller, q, sort string, offset, n int) (RepoList, error) {
	match, err := matcher(q)
	if err != nil {
		return RepoList{}, err
	}
	s, err := h.stats.get(ctx)
	if err != nil {
		return RepoList{}, err
	}
	var rs []*repoCount
	for i := range s.repos {
		if r := &s.repos[i]; match(r.name) && c.mayList(r.name) {
			rs = append(rs, r)
		}
	}
	key := map[string]func(a, b *repoCount) int{
		"size":   func(a, b *repoCount) int { return cmpInt(b.size, a.size) },
		"pushed": func(a, b *repoCount) int { return b.pushed.Compare(a.pushed) },
		"pulled": func(a, b *repoCount) int { return b.pulled.Compare(a.pulled) },
	}[sort]
	slices.SortStableFunc(rs, func(a, b *repoCount) int {
		if k := key(a, b); k != 0 {
			return k
		}
		return strings.Compare(a.name, b.name)
	})
	out := RepoList{Query: q, Sort: sort, Offset: offset, Repositories: []string{}, Summaries: []RepoSummary{}, CountedAt: s.at}
	for i := offset; i < len(rs) && i < offset+n; i++ {
		r := rs[i]
		out.Repositories = append(out.Repositories, r.name)
		out.Summaries = append(out.Summaries, RepoSummary{Name: r.name, Tags: r.tags, Size: r.size, Pushed: timeOrNil(r.pushed), Pulled: timeOrNil(r.pulled)})
	}
	if offset+n < len(rs) {
		out.NextOffset = offset + n
	}
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
