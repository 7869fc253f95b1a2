package replicate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/gobwas/glob"
)

// globs compiles patterns with `/` as separator: `*` stays within a
// segment, `**` crosses them, as in RBAC rules.
var globs = glob.Compiler{Separators: []rune{'/'}, Globstar: true}

// Selection picks repositories and tags by glob.
type Selection struct {
	repos, tags []*glob.Pattern
	// names are the repository patterns without glob syntax: they are
	// copied without listing the source's catalog.
	names []string
	// newest, when above 0, keeps only that many of the highest tags.
	newest int
}

// NewSelection compiles repository and tag globs. No repository glob
// selects every repository, no tag glob every tag.
func NewSelection(repos, tags []string) (*Selection, error) {
	s := &Selection{}
	for _, r := range repos {
		if !IsGlob(r) {
			s.names = append(s.names, r)
			continue
		}
		g, err := globs.Compile(r)
		if err != nil {
			return nil, fmt.Errorf("repository glob %q: %v", r, err)
		}
		s.repos = append(s.repos, g)
	}
	for _, t := range tags {
		g, err := globs.Compile(t)
		if err != nil {
			return nil, fmt.Errorf("tag glob %q: %v", t, err)
		}
		s.tags = append(s.tags, g)
	}
	return s, nil
}

// IsGlob reports whether pattern holds glob syntax rather than naming one
// repository.
func IsGlob(pattern string) bool { return strings.ContainsAny(pattern, `*?[]{}\!`) }

// NeedsCatalog reports whether the repositories can only be known by
// listing the source's catalog.
func (s *Selection) NeedsCatalog() bool { return len(s.repos) > 0 || len(s.names) == 0 }

// Repos returns, in order and once each, the plain names and the
// catalog's repositories that a glob matches. catalog may be nil when
// NeedsCatalog is false.
func (s *Selection) Repos(catalog []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(r string) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, n := range s.names {
		add(n)
	}
	for _, r := range catalog {
		if (len(s.repos) == 0 && len(s.names) == 0) || matchAny(s.repos, r) {
			add(r)
		}
	}
	return out
}

// Tags returns the tags that are items of their own: those a tag glob
// matches, less the referrers tags (`sha256-<hex>` and its cosign
// suffixes), which travel with the manifest they name. With Newest set,
// only the highest of them in version order are kept.
func (s *Selection) Tags(tags []string) []string {
	var out []string
	for _, t := range tags {
		if _, ok := attachedTo(t); ok {
			continue
		}
		if len(s.tags) == 0 || matchAny(s.tags, t) {
			out = append(out, t)
		}
	}
	if s.newest > 0 && len(out) > s.newest {
		out = slices.Clone(out)
		slices.SortStableFunc(out, compareVersions)
		out = out[len(out)-s.newest:]
	}
	return out
}

// Newest keeps only the n highest tags of each repository in version
// order (see compareVersions); 0 keeps every tag.
func (s *Selection) Newest(n int) *Selection {
	s.newest = n
	return s
}

// MatchRepo reports whether the selection picks repository r.
func (s *Selection) MatchRepo(r string) bool {
	return (len(s.repos) == 0 && len(s.names) == 0) || slices.Contains(s.names, r) || matchAny(s.repos, r)
}

// MatchTag reports whether tag is picked: a referrers tag always is (it
// goes with its subject), another when a tag glob matches it.
func (s *Selection) MatchTag(tag string) bool {
	if _, ok := attachedTo(tag); ok {
		return true
	}
	return len(s.tags) == 0 || matchAny(s.tags, tag)
}

func matchAny(ps []*glob.Pattern, s string) bool {
	for _, p := range ps {
		if p.Match(s) {
			return true
		}
	}
	return false
}

// attachedTag matches the referrers tag schema and cosign's tags:
// sha256-<hex>, sha256-<hex>.sig, .att, .sbom.
var attachedTag = regexp.MustCompile(`^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(\.[A-Za-z0-9_-]+)?$`)

// attachedTo returns the digest ("sha256:<hex>") that tag names when it
// follows the referrers tag schema.
func attachedTo(tag string) (string, bool) {
	m := attachedTag.FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	return m[1] + ":" + m[2], true
}

// Attached returns the tags among tags that name one of digests under
// the referrers tag schema, in the order of tags.
func Attached(tags []string, digests map[string]bool) []string {
	var out []string
	for _, t := range tags {
		if d, ok := attachedTo(t); ok && digests[d] {
			out = append(out, t)
		}
	}
	return out
}

// TargetName is the target repository of source repository repo.
func TargetName(prefix, repo string) string {
	if prefix == "" {
		return repo
	}
	return strings.TrimSuffix(prefix, "/") + "/" + repo
}
