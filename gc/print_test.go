package gc

import (
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestPrint checks the dry-run table: one line per item with its kind,
// repository ("-" for none), digest or key, size and reason in words,
// then the total and what waits for the grace period; sizes in binary
// units, or in bytes when raw.
func TestPrint(t *testing.T) {
	m, b := digest.FromString("manifest"), digest.FromString("blob")
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	p := &PassPlan{Now: now, Cutoff: now.Add(-time.Hour), Items: []Item{
		{Kind: KindManifest, Reason: ReasonUntagged, Repo: "team/app", Digest: m, Size: 10},
		{Kind: KindBlob, Reason: ReasonUnlinked, Digest: b, Size: 1536 << 20},
		{Kind: KindFile, Reason: ReasonUnknownFile, Key: "uploads/x", Size: 3},
	}, Bytes: 1536<<20 + 3, Waiting: 1, WaitingBytes: 5 << 30}
	for _, tt := range []struct {
		raw  bool
		want [][]string
		tail []string
	}{
		{false, [][]string{
			{"manifest", "team/app", string(m), "10 B", "untagged, nothing refers to it"},
			{"blob", "-", string(b), "1.5 GiB", "no repository links it"},
			{"file", "-", "uploads/x", "3 B", "file unknown to metadata"},
		}, []string{
			"3 items, 1.5 GiB to free",
			"5.0 GiB waiting for the grace period (1 unknown files among it), collectable by 2026-06-01T13:00:00Z",
		}},
		{true, [][]string{
			{"manifest", "team/app", string(m), "10", "untagged, nothing refers to it"},
			{"blob", "-", string(b), "1610612736", "no repository links it"},
			{"file", "-", "uploads/x", "3", "file unknown to metadata"},
		}, []string{
			"3 items, 1610612739 bytes to free",
			"5368709120 bytes waiting for the grace period (1 unknown files among it), collectable by 2026-06-01T13:00:00Z",
		}},
	} {
		var out strings.Builder
		if err := p.Print(&out, tt.raw); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		want := append([][]string{{"KIND", "REPOSITORY", "DIGEST/KEY", "SIZE", "REASON"}}, tt.want...)
		if len(lines) != len(want)+len(tt.tail) {
			t.Fatalf("Print(raw %t) wrote %d lines, want %d:\n%s", tt.raw, len(lines), len(want)+len(tt.tail), out.String())
		}
		for i, cols := range want {
			if got := strings.Join(strings.Fields(lines[i]), " "); got != strings.Join(cols, " ") {
				t.Errorf("Print(raw %t) line %d = %q, want %q", tt.raw, i+1, got, strings.Join(cols, " "))
			}
		}
		for i, w := range tt.tail {
			if got := lines[len(want)+i]; got != w {
				t.Errorf("Print(raw %t) line %d = %q, want %q", tt.raw, len(want)+i+1, got, w)
			}
		}
	}
}

// TestPrintResult checks a pass's summary, with and without bytes left
// for the grace period.
func TestPrintResult(t *testing.T) {
	by := time.Date(2026, 6, 1, 13, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		r    Result
		raw  bool
		want string
	}{
		{Result{Manifests: 1, Links: 2, Blobs: 3, Bytes: 3 << 20}, false,
			"deleted 1 manifests, 2 blob links, 3 blobs, 0 uploads, 0 unknown files; freed 3.0 MiB; 0 planned items no longer qualified; 0 failed\n"},
		{Result{WaitingBytes: 1 << 30, CollectableBy: by}, false,
			"deleted 0 manifests, 0 blob links, 0 blobs, 0 uploads, 0 unknown files; freed 0 B; 0 planned items no longer qualified; 0 failed\n" +
				"1.0 GiB waiting for the grace period, collectable by 2026-06-01T13:00:00Z\n"},
		{Result{Blobs: 1, Bytes: 1234, Skipped: 1, WaitingBytes: 5, CollectableBy: by}, true,
			"deleted 0 manifests, 0 blob links, 1 blobs, 0 uploads, 0 unknown files; freed 1234 bytes; 1 planned items no longer qualified; 0 failed\n" +
				"5 bytes waiting for the grace period, collectable by 2026-06-01T13:00:00Z\n"},
	} {
		var out strings.Builder
		if err := tt.r.Print(&out, tt.raw); err != nil || out.String() != tt.want {
			t.Errorf("Result%+v.Print(raw %t) = %q, %v\nwant %q", tt.r, tt.raw, out.String(), err, tt.want)
		}
	}
}

// TestProgressLine checks the progress line through a pass's phases.
func TestProgressLine(t *testing.T) {
	var p Progress
	p.scannedRepo()
	p.scannedBlob()
	p.scannedBlob()
	if got, want := p.Line(false), "gc: planning: 1 repositories, 2 blobs scanned"; got != want {
		t.Errorf("Line while planning = %q, want %q", got, want)
	}
	p.startDeleting(4)
	p.deleted(Item{Kind: KindManifest, Size: 100})
	p.deleted(Item{Kind: KindBlob, Size: 2 << 20})
	if got, want := p.Line(false), "gc: deleting: 2 of 4 items (50%), 2.0 MiB freed"; got != want {
		t.Errorf("Line while deleting = %q, want %q", got, want)
	}
	if got, want := p.Line(true), "gc: deleting: 2 of 4 items (50%), 2097152 bytes freed"; got != want {
		t.Errorf("Line(raw) while deleting = %q, want %q", got, want)
	}
	var none *Progress
	none.scannedRepo()
	none.deleted(Item{})
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
