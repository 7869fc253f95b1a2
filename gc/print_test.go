package gc

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestPrint checks the dry-run table: one line per item with its kind,
// repository ("-" for none), digest or key, size and reason in words,
// then the total.
func TestPrint(t *testing.T) {
	m, b := digest.FromString("manifest"), digest.FromString("blob")
	p := &PassPlan{Items: []Item{
		{Kind: KindManifest, Reason: ReasonUntagged, Repo: "team/app", Digest: m, Size: 10},
		{Kind: KindBlob, Reason: ReasonUnlinked, Digest: b, Size: 5},
		{Kind: KindFile, Reason: ReasonUnknownFile, Key: "uploads/x", Size: 3},
	}, Bytes: 8, Waiting: 1}
	var out strings.Builder
	if err := p.Print(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := [][]string{
		{"KIND", "REPOSITORY", "DIGEST/KEY", "SIZE", "REASON"},
		{"manifest", "team/app", string(m), "10", "untagged, nothing refers to it"},
		{"blob", "-", string(b), "5", "no repository links it"},
		{"file", "-", "uploads/x", "3", "file unknown to metadata"},
	}
	if len(lines) != len(want)+1 {
		t.Fatalf("Print wrote %d lines, want %d:\n%s", len(lines), len(want)+1, out.String())
	}
	for i, cols := range want {
		if got := strings.Join(strings.Fields(lines[i]), " "); got != strings.Join(cols, " ") {
			t.Errorf("line %d = %q, want %q", i+1, got, strings.Join(cols, " "))
		}
	}
	if got, want := lines[len(lines)-1], "3 items, 8 bytes to free; 1 unknown files within the grace period"; got != want {
		t.Errorf("last line = %q, want %q", got, want)
	}
}

// TestNames checks that every kind and reason prints as words, and that
// an unknown value still prints.
func TestNames(t *testing.T) {
	for k := KindManifest; k <= KindFile; k++ {
		if s := k.String(); s == "" || strings.HasPrefix(s, "kind(") {
			t.Errorf("Kind %d prints %q", uint8(k), s)
		}
	}
	for r := ReasonUntagged; r <= ReasonUnknownFile; r++ {
		if s := r.String(); s == "" || strings.HasPrefix(s, "reason(") {
			t.Errorf("Reason %d prints %q", uint8(r), s)
		}
	}
	if s := Kind(0).String(); s != "kind(0)" {
		t.Errorf("Kind(0) prints %q, want kind(0)", s)
	}
	if s := Reason(200).String(); s != "reason(200)" {
		t.Errorf("Reason(200) prints %q, want reason(200)", s)
	}
}
