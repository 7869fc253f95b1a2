package replicate

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestPrintPlan(t *testing.T) {
	blob := v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, Size: 1000}
	m := Manifest{Ref: "v1", Raw: []byte("0123456789")}
	items := []*Item{
		{Repo: "team/app", Tag: "v1", Target: "edge/team/app", Manifests: []Manifest{m}, Blobs: []v1.Descriptor{blob}},
		{Repo: "team/app", Tag: "v2", Target: "edge/team/app", Manifests: []Manifest{m}, Blobs: []v1.Descriptor{blob}},
		{Repo: "team/app", Tag: "v3", Target: "edge/team/app"},
		{Repo: "team/gone", Target: "edge/team/gone", Err: errors.New("listing tags:\n NAME_UNKNOWN")},
	}
	var out bytes.Buffer
	if err := PrintPlan(&out, items); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{
		"team/app edge/team/app v1 copy 1 manifests, 1 blobs 1010",
		"team/app edge/team/app v3 up to date 0",
		"team/gone edge/team/gone - fails: listing tags: NAME_UNKNOWN 0",
		"dry run: 2 of 4 items to copy, at most 1020 bytes; nothing copied", // the shared blob once
	} {
		if !strings.Contains(got, want) {
			t.Errorf("PrintPlan lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPrintResultsAndFailures(t *testing.T) {
	ok := &Item{Repo: "team/app", Tag: "v1", Target: "team/app"}
	bad := &Item{Repo: "team/app", Tag: "v2", Target: "team/app"}
	results := []Result{
		{Item: ok, Status: Copied, Bytes: 1234},
		{Item: ok, Status: UpToDate},
		{Item: bad, Status: Failed, Err: errors.New("manifest v2: DENIED")},
	}
	var out bytes.Buffer
	if err := PrintResults(&out, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "failed: manifest v2: DENIED") || !strings.HasSuffix(out.String(), "1 copied, 1 up to date, 1 failed; 1234 bytes sent\n") {
		t.Errorf("PrintResults =\n%s", out.String())
	}
	err := Failures(results)
	if err == nil || err.Error() != "1 of 3 items failed:\n  team/app:v2: manifest v2: DENIED" {
		t.Errorf("Failures = %v", err)
	}
	if err := Failures(results[:2]); err != nil {
		t.Errorf("Failures(no failure) = %v, want nil", err)
	}
}
