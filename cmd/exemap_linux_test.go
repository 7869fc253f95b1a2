package cmd

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// exemapProbe is in the binary's data, a private writable mapping of the
// executable that releaseExecutable must leave alone: dropped, it would
// read again as the file holds it.
var exemapProbe = []int{1}

// executableRSS is how many KiB of the executable's read-only mappings
// are resident, from /proc/self/smaps.
func executableRSS(t *testing.T) (kb int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	starts := map[uint64]bool{}
	for _, r := range executableRanges() {
		starts[uint64(r.start)] = true
	}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		if lo, _, ok := strings.Cut(l, "-"); ok && !strings.Contains(lo, " ") {
			start, err := strconv.ParseUint(lo, 16, 64)
			in = err == nil && starts[start]
			continue
		}
		if v, ok := strings.CutPrefix(l, "Rss:"); ok && in {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			kb += n
		}
	}
	return kb
}

// TestReleaseExecutable: the executable's code and constants leave the
// resident set, and the process runs on with its data as it was.
func TestReleaseExecutable(t *testing.T) {
	ranges := executableRanges()
	if len(ranges) < 2 {
		t.Fatalf("found %d read-only mappings of the executable, want its code and its constants", len(ranges))
	}
	exemapProbe[0] = 2
	before := executableRSS(t)
	releaseExecutable()
	after := executableRSS(t)
	t.Logf("the executable's read-only pages: %d KiB resident before, %d KiB after", before, after)
	if before-after < 1024 {
		t.Errorf("the executable's read-only pages: %d KiB resident before, %d KiB after: want at least 1 MiB and half given back", before, after)
	}
	if exemapProbe[0] != 2 {
		t.Fatalf("a variable in the binary's data reads %d after the release, want 2", exemapProbe[0])
	}
	if _, err := LoadFile("../nora.toml.example"); err != nil {
		t.Fatalf("loading the example configuration after the release: %v", err)
	}
}
