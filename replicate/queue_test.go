package replicate

import (
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

func TestCoalesce(t *testing.T) {
	d1, d2 := digest.FromString("1"), digest.FromString("2")
	push := func(repo string, d digest.Digest, tags ...string) storage.Event {
		return storage.Event{Kind: storage.EventPush, Repo: repo, Digest: d, Tags: tags}
	}
	delTag := func(repo, tag string) storage.Event {
		return storage.Event{Kind: storage.EventDeleteTag, Repo: repo, Digest: d1, Tags: []string{tag}}
	}
	delManifest := func(repo string, d digest.Digest) storage.Event {
		return storage.Event{Kind: storage.EventDeleteManifest, Repo: repo, Digest: d}
	}
	sig := "sha256-" + d1.Encoded() + ".sig"
	evs := []storage.Event{
		push("team/app", d1, "v1", "latest"),
		push("other/x", d1, "v1"),      // repository not picked
		push("team/app", d2, "dev"),    // tag not picked
		push("team/app", d2, "latest"), // only this latest matters
		push("team/app", d2),           // by digest: a referrer or child
		push("team/app", d1, sig),      // referrers tags are always picked
		delTag("team/base", "v1"),      // ends copies of team/app: a new step
		push("team/app", d1, "v2"),
		push("team/base", d1, "v1"), // re-pushed after its delete: copied
		delTag("team/app", "v2"),    // deleted after its push: deleted only
		delManifest("team/app", d2), // drops the earlier copy of d2
	}
	sel, _ := NewSelection([]string{"team/**"}, []string{"v*", "latest"})
	got := fmt.Sprint(coalesce(evs, sel, true))
	want := fmt.Sprint([]step{
		{repo: "team/app", copy: []string{"v1", "latest", sig}},
		{repo: "team/base", copy: []string{"v1"}},
		{repo: "team/app", delete: "v2"},
		{repo: "team/app", delete: d2.String()},
	})
	if got != want {
		t.Errorf("coalesce = %s\nwant        %s", got, want)
	}
	got = fmt.Sprint(coalesce(evs, sel, false))
	want = fmt.Sprint([]step{
		{repo: "team/app", copy: []string{"v1", "latest", d2.String(), sig, "v2"}},
		{repo: "team/base", copy: []string{"v1"}},
	})
	if got != want {
		t.Errorf("coalesce without deletes = %s\nwant                        %s", got, want)
	}
}
