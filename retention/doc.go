// Package retention deletes tags by declarative rules from nora.toml,
// planned then applied.
//
// Plan is a pure function of the clock, the tags (with their push and
// last pull times) and the rules: it decides keep or delete for every tag
// and names what decided. Apply deletes exactly the tags a plan marked,
// each only if it still names the digest it named when planned, so a tag
// pushed again in between stays. Deleting a tag never deletes another
// tag, even one naming the same manifest; the space is freed by GC once
// nothing references the manifest's blobs.
//
// The semantics, stated in the README and tested sentence by sentence in
// retention_test.go:
//   - A rule applies to a tag when the tag's repository matches one of
//     its repositories globs and the tag matches one of its tags globs
//     (every tag when tags is empty). In globs `*` stays within one path
//     segment and `**` crosses segments.
//   - A rule deletes a tag only if every condition it sets holds: the tag
//     is not among the keep_last most recently pushed tags the rule applies
//     to in that repository, it was pushed longer than older_than ago, and
//     it was not pulled within pulled_within.
//   - A tag is deleted when at least one rule applies to it and every rule
//     that applies to it deletes it: keeping wins.
//   - A tag no rule applies to is kept.
//   - A tag matching a protected pattern is never deleted.
//   - A rule with untagged = true also applies to the repository's
//     untagged manifests that no index or subject keeps, with the same
//     conditions; they are planned with an empty tag.
package retention
