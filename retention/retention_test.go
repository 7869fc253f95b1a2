package retention

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nora-registry/nora/storage"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return now.Add(-d) }

const day = 24 * time.Hour

// tag builds a tag pushed age ago and pulled pulledAgo ago (never if 0).
func tag(repo, name string, age, pulledAgo time.Duration) Tag {
	t := Tag{Repo: repo, Tag: name, Digest: digest.FromString(repo + ":" + name), Pushed: ago(age)}
	if pulledAgo > 0 {
		t.Pulled = ago(pulledAgo)
	}
	return t
}

func deleted(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Delete {
			out = append(out, d.Repo+":"+d.Tag.Tag)
		}
	}
	slices.Sort(out)
	return out
}

// Each case is one sentence of the README's retention section.
func TestPlanSemantics(t *testing.T) {
	tests := []struct {
		sentence string
		cfg      Config
		tags     []Tag
		want     []string
	}{
		{
			sentence: "A rule applies to a tag when the tag's repository matches one of its repositories globs",
			cfg:      Config{Rules: []Rule{{Repositories: []string{"team/*"}, OlderThan: "1d"}}},
			tags:     []Tag{tag("team/app", "a", 2*day, 0), tag("other/app", "a", 2*day, 0), tag("team/x/app", "a", 2*day, 0)},
			want:     []string{"team/app:a"},
		},
		{
			sentence: "and `**` crosses segments",
			cfg:      Config{Rules: []Rule{{Repositories: []string{"**/dev-*"}, OlderThan: "1d"}}},
			tags:     []Tag{tag("dev-a", "a", 2*day, 0), tag("x/y/dev-b", "b", 2*day, 0), tag("x/prod", "c", 2*day, 0)},
			want:     []string{"dev-a:a", "x/y/dev-b:b"},
		},
		{
			sentence: "and the tag matches one of its tags globs",
			cfg:      Config{Rules: []Rule{{Repositories: []string{"**"}, Tags: []string{"pr-*", "tmp"}, OlderThan: "7d"}}},
			tags:     []Tag{tag("app", "pr-1", 8*day, 0), tag("app", "tmp", 8*day, 0), tag("app", "v1", 8*day, 0)},
			want:     []string{"app:pr-1", "app:tmp"},
		},
		{
			sentence: "(every tag when tags is empty)",
			cfg:      Config{Rules: []Rule{{Repositories: []string{"app"}, OlderThan: "7d"}}},
			tags:     []Tag{tag("app", "pr-1", 8*day, 0), tag("app", "v1", 8*day, 0)},
			want:     []string{"app:pr-1", "app:v1"},
		},
		{
			sentence: "keep_last keeps the most recently pushed tags the rule applies to, per repository",
			cfg:      Config{Rules: []Rule{{Repositories: []string{"**"}, KeepLast: 2}}},
			tags: []Tag{
				tag("a", "1", 4*day, 0), tag("a", "2", 3*day, 0), tag("a", "3", 2*day, 0), tag("a", "4", day, 0),
				tag("b", "1", 9*day, 0), tag("b", "2", 8*day, 0),
			},
			want: []string{"a:1", "a:2"},
		},
		{
			sentence: "older_than deletes only tags pushed longer ago",
			cfg:      Config{Rules: []Rule{{Repositories: []string{"**"}, OlderThan: "36h"}}},
			tags:     []Tag{tag("a", "old", 2*day, 0), tag("a", "new", day, 0)},
			want:     []string{"a:old"},
		},
		{
			sentence: "pulled_within keeps tags pulled recently",
			cfg:      Config{Rules: []Rule{{Repositories: []string{"**"}, PulledWithin: "30d"}}},
			tags:     []Tag{tag("a", "used", 90*day, 2*day), tag("a", "stale", 90*day, 40*day), tag("a", "never", 90*day, 0)},
			want:     []string{"a:never", "a:stale"},
		},
		{
			sentence: "A rule deletes a tag only if every condition it sets holds",
			cfg:      Config{Rules: []Rule{{Repositories: []string{"**"}, KeepLast: 1, OlderThan: "7d", PulledWithin: "30d"}}},
			tags: []Tag{
				tag("a", "oldest", 20*day, 0),           // all conditions hold
				tag("a", "newest", 3*day-time.Hour, 0),  // keep_last 1 keeps it
				tag("a", "recent-pull", 10*day, day),    // pulled within 30d
				tag("a", "gone", 10*day, 0),             // all conditions hold
				tag("a", "old-pull", 11*day, 31*day),    // all conditions hold
				tag("a", "fresh", 6*day, 0),             // pushed within 7d
				tag("a", "unused-old", 12*day, 100*day), // all conditions hold
			},
			want: []string{"a:gone", "a:old-pull", "a:oldest", "a:unused-old"},
		},
		{
			sentence: "A tag is deleted when every rule that applies to it deletes it: keeping wins",
			cfg: Config{Rules: []Rule{
				{Repositories: []string{"**/dev-*"}, KeepLast: 1},
				{Repositories: []string{"**"}, Tags: []string{"pr-*"}, OlderThan: "7d"},
			}},
			tags: []Tag{
				tag("x/dev-a", "pr-1", 10*day, 0), // rule 0 deletes, rule 1 deletes
				tag("x/dev-a", "pr-2", 3*day, 0),  // rule 0 deletes, rule 1 keeps: young
				tag("x/dev-a", "main", day, 0),    // rule 0 keeps: newest
				tag("prod", "pr-3", 10*day, 0),    // only rule 1 applies
			},
			want: []string{"prod:pr-3", "x/dev-a:pr-1"},
		},
		{
			sentence: "A tag no rule applies to is kept",
			cfg:      Config{Rules: []Rule{{Repositories: []string{"dev/**"}, OlderThan: "1d"}}},
			tags:     []Tag{tag("prod/app", "v1", 100*day, 0)},
			want:     nil,
		},
		{
			sentence: "A tag matching a protected pattern is never deleted",
			cfg:      Config{Protected: []string{"latest", "v*"}, Rules: []Rule{{Repositories: []string{"**"}, OlderThan: "1d"}}},
			tags:     []Tag{tag("a", "latest", 9*day, 0), tag("a", "v1.2", 9*day, 0), tag("a", "pr-1", 9*day, 0)},
			want:     []string{"a:pr-1"},
		},
		{
			sentence: "Protected tags take no place among a rule's keep_last",
			cfg:      Config{Protected: []string{"latest"}, Rules: []Rule{{Repositories: []string{"**"}, KeepLast: 2}}},
			tags:     []Tag{tag("a", "latest", day, 0), tag("a", "v3", 2*day, 0), tag("a", "v2", 3*day, 0), tag("a", "v1", 4*day, 0)},
			want:     []string{"a:v1"},
		},
		{
			sentence: "A rule with untagged = true also applies to untagged manifests",
			cfg: Config{Rules: []Rule{
				{Repositories: []string{"a"}, OlderThan: "1d", Untagged: true},
				{Repositories: []string{"b"}, OlderThan: "1d"},
			}},
			tags: []Tag{tag("a", "", 2*day, 0), tag("b", "", 2*day, 0)},
			want: []string{"a:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.sentence, func(t *testing.T) {
			rules, err := Compile(tt.cfg)
			if err != nil {
				t.Fatalf("Compile = %v", err)
			}
			got := deleted(Plan(now, tt.tags, rules))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Plan deletes %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPlanNamesTheDecidingRule(t *testing.T) {
	rules, _ := Compile(Config{Rules: []Rule{
		{Repositories: []string{"**"}, OlderThan: "1d"},
		{Repositories: []string{"**"}, KeepLast: 1},
	}})
	ds := Plan(now, []Tag{tag("a", "old", 9*day, 0), tag("a", "new", 2*day, 0)}, rules)
	for _, d := range ds {
		switch d.Tag.Tag {
		case "old":
			if !d.Delete || d.Rule != 0 {
				t.Errorf("Plan(old) = %+v, want delete by rule 0", d)
			}
		case "new":
			if d.Delete || d.Rule != 1 || !strings.Contains(d.Why, "most recently pushed") {
				t.Errorf("Plan(new) = %+v, want kept by rule 1's keep_last", d)
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Rules: []Rule{{OlderThan: "1d"}}}, "retention.rules[0].repositories"},
		{Config{Rules: []Rule{{Repositories: []string{"**"}}}}, "set at least one"},
		{Config{Rules: []Rule{{Repositories: []string{"**"}, OlderThan: "7 days"}}}, "retention.rules[0].older_than"},
		{Config{Rules: []Rule{{Repositories: []string{"**"}, KeepLast: -1}}}, "keep_last"},
		{Config{Rules: []Rule{{Repositories: []string{"[a"}, KeepLast: 1}}}, "invalid glob"},
		{Config{Protected: []string{"[x"}}, "retention.protected"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%+v) = %v, want an error naming %q", tt.cfg, err, tt.want)
		}
	}
	for _, s := range []string{"7d", "36h", "90m", "45s", "1h30m"} {
		if _, err := Compile(Config{Rules: []Rule{{Repositories: []string{"**"}, OlderThan: s}}}); err != nil {
			t.Errorf("Compile(older_than = %q) = %v, want nil", s, err)
		}
	}
}

// openStore opens a new store, closed when the test ends.
func openStore(t *testing.T) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func putImage(t *testing.T, s *storage.Store, repo, name string, tags ...string) digest.Digest {
	t.Helper()
	layer := []byte("layer of " + repo + name)
	ld := digest.FromBytes(layer)
	if _, err := s.PutBlob(t.Context(), repo, ld, int64(len(layer)), bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
	content := []byte(fmt.Sprintf(`{"schemaVersion":2,"name":%q}`, name))
	m := storage.Manifest{Digest: digest.FromBytes(content), MediaType: ocispec.MediaTypeImageManifest, Content: content, Blobs: []digest.Digest{ld}}
	if err := s.PutManifest(t.Context(), repo, m, tags); err != nil {
		t.Fatal(err)
	}
	return m.Digest
}

// TestDryRunEqualsApply checks Apply deletes exactly what the plan lists,
// and that removing a tag never removes another tag of the same manifest.
func TestDryRunEqualsApply(t *testing.T) {
	s := openStore(t)
	putImage(t, s, "dev/app", "a", "pr-1", "v1")
	putImage(t, s, "dev/app", "b", "pr-2")
	putImage(t, s, "dev/app", "c", "pr-3", "latest")
	putImage(t, s, "prod/app", "d", "pr-9")
	untagged := putImage(t, s, "dev/app", "e")
	rules, err := Compile(Config{Protected: []string{"latest"}, Rules: []Rule{
		{Repositories: []string{"dev/**"}, Tags: []string{"pr-*", "latest"}, OlderThan: "0s", Untagged: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(time.Second)
	tags, err := Collect(t.Context(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan := Plan(when, tags, rules)
	var buf bytes.Buffer
	Print(&buf, plan, false)
	want := deleted(plan)
	if !slices.Equal(want, []string{"dev/app:", "dev/app:pr-1", "dev/app:pr-2", "dev/app:pr-3"}) {
		t.Fatalf("Plan deletes %v\n%s", want, buf.String())
	}
	res, err := Apply(t.Context(), s, when, plan, nil)
	if err != nil || res.Tags != 3 || res.Manifests != 1 || res.Skipped != 0 {
		t.Fatalf("Apply = %+v, %v, want 3 tags and 1 manifest", res, err)
	}
	after, _ := Collect(t.Context(), s, nil)
	var left []string
	for _, tg := range after {
		left = append(left, tg.Repo+":"+tg.Tag)
	}
	slices.Sort(left)
	// dev/app's manifests b now has no tag and shows up untagged; v1 and
	// latest stay though their manifests lost a tag.
	wantLeft := []string{"dev/app:", "dev/app:latest", "dev/app:v1", "prod/app:pr-9"}
	if !slices.Equal(left, wantLeft) {
		t.Errorf("tags after Apply = %v, want %v", left, wantLeft)
	}
	if _, err := s.StatManifest(t.Context(), "dev/app", string(untagged)); err == nil {
		t.Errorf("untagged manifest %s still there after Apply", untagged)
	}
}

// TestReadmeExample runs the README's example configuration.
func TestReadmeExample(t *testing.T) {
	rules, err := Compile(Config{Protected: []string{"latest", "v*"}, Rules: []Rule{
		{Repositories: []string{"**/dev-*"}, Tags: []string{"*"}, KeepLast: 5},
		{Repositories: []string{"**"}, Tags: []string{"pr-*"}, OlderThan: "7d", PulledWithin: "30d"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tags := []Tag{
		tag("x/dev-a", "pr-3", 10*day, 0), // among the 5 newest: rule 0 keeps
		tag("x/dev-a", "a", 11*day, 0),
		tag("x/dev-a", "b", 12*day, 0),
		tag("x/dev-a", "c", 13*day, 0),
		tag("x/dev-a", "d", 14*day, 0),
		tag("x/dev-a", "e", 15*day, 0),      // 6th: deleted
		tag("x/dev-a", "latest", 16*day, 0), // protected
		tag("prod", "pr-1", 10*day, 0),      // deleted
		tag("prod", "pr-2", 10*day, 2*day),  // pulled within 30d
		tag("prod", "v1", 100*day, 0),       // no rule applies
	}
	got := deleted(Plan(now, tags, rules))
	if want := []string{"prod:pr-1", "x/dev-a:e"}; !slices.Equal(got, want) {
		t.Errorf("Plan deletes %v, want %v", got, want)
	}
}

// TestApplySkipsRepushedTag: a tag pushed again between the plan and its
// application is not deleted.
func TestApplySkipsRepushedTag(t *testing.T) {
	s := openStore(t)
	putImage(t, s, "app", "old", "pr-1")
	rules, _ := Compile(Config{Rules: []Rule{{Repositories: []string{"**"}, OlderThan: "0s"}}})
	tags, _ := Collect(t.Context(), s, nil)
	when := time.Now().Add(time.Second)
	plan := Plan(when, tags, rules)
	putImage(t, s, "app", "new", "pr-1")
	res, err := Apply(t.Context(), s, when, plan, nil)
	if err != nil || res.Tags != 0 || res.Skipped != 1 {
		t.Errorf("Apply after a re-push = %+v, %v, want 1 skipped", res, err)
	}
	if got, _, _ := s.Tags(t.Context(), "app", "", -1); !slices.Equal(got, []string{"pr-1"}) {
		t.Errorf("Tags = %v, want [pr-1]", got)
	}
}

// TestApplySkipsTagRepushedSameManifest: a tag pushed again with the same
// manifest between the plan and its application is newest now, and stays.
func TestApplySkipsTagRepushedSameManifest(t *testing.T) {
	s := openStore(t)
	putImage(t, s, "app", "same", "pr-1")
	rules, _ := Compile(Config{Rules: []Rule{{Repositories: []string{"**"}, OlderThan: "0s"}}})
	tags, _ := Collect(t.Context(), s, nil)
	when := time.Now().Add(time.Second)
	plan := Plan(when, tags, rules)
	if got := deleted(plan); !slices.Equal(got, []string{"app:pr-1"}) {
		t.Fatalf("Plan deletes %v, want [app:pr-1]", got)
	}
	putImage(t, s, "app", "same", "pr-1")
	res, err := Apply(t.Context(), s, when, plan, nil)
	if err != nil || res.Tags != 0 || res.Skipped != 1 {
		t.Errorf("Apply after a re-push of the same manifest = %+v, %v, want 1 skipped", res, err)
	}
	if got, _, _ := s.Tags(t.Context(), "app", "", -1); !slices.Equal(got, []string{"pr-1"}) {
		t.Errorf("Tags = %v, want [pr-1]", got)
	}
}

// TestPrintCounts checks that the plan's last line counts what its table
// lists: protected tags as such, and tags no rule covers only with all.
func TestPrintCounts(t *testing.T) {
	rules, err := Compile(Config{Protected: []string{"latest"}, Rules: []Rule{
		{Repositories: []string{"dev/**"}, KeepLast: 1, Untagged: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	plan := Plan(now, []Tag{
		tag("dev/app", "latest", 5*day, 0), // protected
		tag("dev/app", "v2", day, 0),       // kept: the newest
		tag("dev/app", "v1", 2*day, 0),     // deleted
		tag("dev/app", "", 3*day, 0),       // untagged, deleted
		tag("prod/app", "v1", 9*day, 0),    // no rule covers it
		tag("prod/app", "latest", 9*day, 0),
	}, rules)
	if got, want := Count(plan), (Counts{Total: 6, Delete: 2, Kept: 1, Protected: 2, NoRule: 1}); got != want {
		t.Errorf("Count = %+v, want %+v", got, want)
	}
	for _, all := range []bool{false, true} {
		var out strings.Builder
		if err := Print(&out, plan, all); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		rows, last := lines[1:len(lines)-1], lines[len(lines)-1]
		want := "6 tags and untagged manifests: 2 to delete, 1 kept by a rule, 2 protected, 1 no rule covers"
		wantRows := 6
		if !all {
			want += " (not listed; --all lists them)"
			wantRows = 5
		}
		if last != want || len(rows) != wantRows {
			t.Errorf("Print(all %t): %d rows, last line %q; want %d rows and %q\n%s", all, len(rows), last, wantRows, want, out.String())
		}
		protected := 0
		for _, r := range rows {
			if f := strings.Fields(r); f[len(f)-2] == "keep" && f[len(f)-1] == "protected" {
				protected++
			}
		}
		if protected != 2 {
			t.Errorf("Print(all %t) shows %d rows kept as protected, want 2:\n%s", all, protected, out.String())
		}
	}
}

// TestProgressLine checks the progress line of a pass on a real store:
// the repositories read, then the deletions tried.
func TestProgressLine(t *testing.T) {
	s := openStore(t)
	putImage(t, s, "a", "x", "pr-1")
	putImage(t, s, "b", "y", "pr-2", "v1")
	var p Progress
	tags, err := Collect(t.Context(), s, &p)
	if got, want := p.Line(), "retention: planning: 2 repositories read"; err != nil || got != want {
		t.Errorf("Line after Collect = %q, %v, want %q", got, err, want)
	}
	rules, _ := Compile(Config{Rules: []Rule{{Repositories: []string{"**"}, Tags: []string{"pr-*"}, OlderThan: "0s"}}})
	when := time.Now().Add(time.Second)
	if _, err := Apply(t.Context(), s, when, Plan(when, tags, rules), &p); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Line(), "retention: deleting: 2 of 2"; got != want {
		t.Errorf("Line after Apply = %q, want %q", got, want)
	}
}
