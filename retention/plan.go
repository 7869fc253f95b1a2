package retention

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// Tag is a tag, or with an empty Tag an untagged manifest, as Plan sees it.
type Tag struct {
	Repo   string
	Tag    string
	Digest digest.Digest
	Pushed time.Time
	// Pulled is the last pull of the manifest, zero if never.
	Pulled time.Time
}

// Decision is Plan's verdict on one tag.
type Decision struct {
	Tag
	Delete bool
	// Rule is the index of the rule that decided, or -1.
	Rule int
	// Why says what decided, e.g. "rule 0: keep_last 5" or "protected".
	Why string
	// Protected is set for a tag matching a retention.protected glob:
	// kept whatever the rules, and not counted by their keep_last.
	Protected bool
}

// Plan decides keep or delete for every tag at time now. It is pure: the
// same tags, rules and clock give the same decisions, in the order of tags.
// Protected tags are kept before any rule looks at them, so they take no
// place among a rule's keep_last.
func Plan(now time.Time, tags []Tag, rules *Rules) []Decision {
	out := make([]Decision, len(tags))
	for i, t := range tags {
		out[i] = Decision{Tag: t, Rule: -1, Why: "no rule applies"}
		if t.Tag != "" && matchAny(rules.protected, t.Tag) {
			out[i].Why, out[i].Protected = "protected", true
		}
	}
	// verdicts[i][r] is rule r's verdict on tag i, for rules that apply.
	type verdict struct {
		rule   int
		delete bool
		why    string
	}
	verdicts := make([][]verdict, len(tags))
	for ri, r := range rules.rules {
		groups := map[string][]int{}
		for i, t := range tags {
			if !out[i].Protected && r.applies(t) {
				groups[t.Repo] = append(groups[t.Repo], i)
			}
		}
		for _, idx := range groups {
			// Newest first; the tag name breaks ties so the plan is
			// deterministic.
			slices.SortFunc(idx, func(a, b int) int {
				if c := tags[b].Pushed.Compare(tags[a].Pushed); c != 0 {
					return c
				}
				return cmp.Compare(tags[a].Tag, tags[b].Tag)
			})
			for rank, i := range idx {
				del, why := r.decide(now, tags[i], rank)
				verdicts[i] = append(verdicts[i], verdict{ri, del, fmt.Sprintf("rule %d: %s", ri, why)})
			}
		}
	}
	for i, vs := range verdicts {
		if len(vs) == 0 {
			continue
		}
		slices.SortFunc(vs, func(a, b verdict) int { return cmp.Compare(a.rule, b.rule) })
		d := &out[i]
		d.Delete, d.Rule, d.Why = true, vs[0].rule, vs[0].why
		for _, v := range vs {
			if !v.delete {
				d.Delete, d.Rule, d.Why = false, v.rule, v.why
				break
			}
		}
	}
	return out
}

func (r compiled) applies(t Tag) bool {
	if !matchAny(r.repos, t.Repo) {
		return false
	}
	if t.Tag == "" {
		return r.Untagged
	}
	return len(r.tags) == 0 || matchAny(r.tags, t.Tag)
}

// decide is one rule's verdict on a tag ranked rank (0 newest) among the
// tags it applies to in the tag's repository.
func (r compiled) decide(now time.Time, t Tag, rank int) (bool, string) {
	if r.KeepLast > 0 && rank < r.KeepLast {
		return false, fmt.Sprintf("among the %d most recently pushed", r.KeepLast)
	}
	if r.hasOlderThan && now.Sub(t.Pushed) <= r.olderThan {
		return false, "pushed within " + r.OlderThan
	}
	if r.hasPulledIn && !t.Pulled.IsZero() && now.Sub(t.Pulled) <= r.pulledWithin {
		return false, "pulled within " + r.PulledWithin
	}
	var why []string
	if r.KeepLast > 0 {
		why = append(why, fmt.Sprintf("not among the %d most recently pushed", r.KeepLast))
	}
	if r.hasOlderThan {
		why = append(why, "older than "+r.OlderThan)
	}
	if r.hasPulledIn {
		why = append(why, "not pulled within "+r.PulledWithin)
	}
	return true, strings.Join(why, ", ")
}

// Collect reads every tag of store, and every untagged manifest that no
// index or subject keeps, with push and last pull times. progress, if not
// nil, counts the repositories read.
func Collect(ctx context.Context, store *storage.Store, progress *Progress) ([]Tag, error) {
	var out []Tag
	err := store.ScanRepos(ctx, func(r *storage.GCRepo) error {
		progress.scannedRepo()
		byDigest := map[digest.Digest]*storage.GCManifest{}
		held := map[digest.Digest]bool{}
		for i := range r.Manifests {
			m := &r.Manifests[i]
			byDigest[m.Digest] = m
			for _, c := range m.Manifests {
				held[c] = true
			}
			if m.Subject != "" {
				held[m.Digest] = true
			}
		}
		for _, t := range r.Tags {
			held[t.Digest] = true
			var pulled time.Time
			if m := byDigest[t.Digest]; m != nil {
				pulled = m.Used
			}
			out = append(out, Tag{Repo: r.Name, Tag: t.Name, Digest: t.Digest, Pushed: t.Pushed, Pulled: pulled})
		}
		for _, m := range r.Manifests {
			if !held[m.Digest] {
				out = append(out, Tag{Repo: r.Name, Digest: m.Digest, Pushed: m.Pushed, Pulled: m.Used})
			}
		}
		return nil
	})
	return out, err
}

// Result is what Apply deleted.
type Result struct {
	Tags, Manifests int
	// Skipped counts planned deletions that no longer held: a tag pushed
	// again, a manifest tagged or used since.
	Skipped int
}

// Apply deletes the tags and untagged manifests decisions mark, planned at
// now: a tag only if it still names the planned digest and was not pushed
// again since the plan's scan (a re-push of the same manifest makes it the
// newest), a manifest only if still untagged, unreferenced and unused
// since now. progress, if not nil, counts the deletions tried.
func Apply(ctx context.Context, store *storage.Store, now time.Time, decisions []Decision, progress *Progress) (Result, error) {
	var res Result
	var errs []error
	progress.startDeleting(Count(decisions).Delete)
	untagged := map[string][]digest.Digest{}
	var repos []string
	for _, d := range decisions {
		if !d.Delete {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if d.Tag.Tag == "" {
			if untagged[d.Repo] == nil {
				repos = append(repos, d.Repo)
			}
			untagged[d.Repo] = append(untagged[d.Repo], d.Digest)
			continue
		}
		ok, err := store.DeleteTagIf(ctx, d.Repo, d.Tag.Tag, d.Digest, d.Pushed)
		progress.tried(1)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s:%s: %w", d.Repo, d.Tag.Tag, err))
		case ok:
			res.Tags++
		default:
			res.Skipped++
		}
	}
	for _, repo := range repos {
		ms, _, err := store.CollectRepo(ctx, storage.GCRepoPlan{Repo: repo, Manifests: untagged[repo], Cutoff: now})
		progress.tried(len(untagged[repo]))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", repo, err))
			continue
		}
		res.Manifests += len(ms)
		res.Skipped += len(untagged[repo]) - len(ms)
	}
	return res, errors.Join(errs...)
}
