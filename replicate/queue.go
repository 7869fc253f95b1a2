package replicate

import (
	"github.com/nora-registry/nora/storage"
)

// A step is what a batch of events asks of a push target: copy refs of a
// repository (tags or digests, read from the source when the step runs,
// so a later change wins), or delete one ref there.
type step struct {
	repo   string
	copy   []string // refs to copy, or nil for a delete
	delete string   // ref to delete
}

// coalesce turns a batch of events into the steps a target needs, in
// the order the events happened. Only the last event about a tag or a
// digest of a repository matters, so earlier ones are dropped: a tag
// pushed ten times is copied once. Copies of the same repository that
// follow each other become one step. Events sel does not pick are
// dropped, and deletes too unless deletes is set. A manifest pushed by
// digest alone (a referrer, an index's child) is copied whatever the tag
// globs: its subject or index may be a tag they pick.
func coalesce(evs []storage.Event, sel *Selection, deletes bool) []step {
	type op struct {
		repo, ref string
		del       bool
	}
	var ops []op
	for _, e := range evs {
		if !sel.MatchRepo(e.Repo) {
			continue
		}
		switch e.Kind {
		case storage.EventPush:
			if len(e.Tags) == 0 {
				ops = append(ops, op{e.Repo, e.Digest.String(), false})
			}
			for _, t := range e.Tags {
				if sel.MatchTag(t) {
					ops = append(ops, op{e.Repo, t, false})
				}
			}
		case storage.EventDeleteTag:
			for _, t := range e.Tags {
				if deletes && sel.MatchTag(t) {
					ops = append(ops, op{e.Repo, t, true})
				}
			}
		case storage.EventDeleteManifest:
			if deletes {
				ops = append(ops, op{e.Repo, e.Digest.String(), true})
			}
		}
	}
	last := map[[2]string]int{}
	for i, o := range ops {
		last[[2]string{o.repo, o.ref}] = i
	}
	var steps []step
	for i, o := range ops {
		switch {
		case last[[2]string{o.repo, o.ref}] != i:
		case o.del:
			steps = append(steps, step{repo: o.repo, delete: o.ref})
		case len(steps) > 0 && steps[len(steps)-1].repo == o.repo && steps[len(steps)-1].copy != nil:
			steps[len(steps)-1].copy = append(steps[len(steps)-1].copy, o.ref)
		default:
			steps = append(steps, step{repo: o.repo, copy: []string{o.ref}})
		}
	}
	return steps
}
