package cmd

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nora-registry/nora/replicate"
)

// TestReplicateArgs: a command line that cannot be right is refused
// before anything is opened or asked, with a reason naming the flag.
func TestReplicateArgs(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "exactly one of --to URL or --from"},
		{[]string{"--to", "a.example", "--from", "b.example/x"}, "exactly one of --to URL or --from"},
		{[]string{"--from", "b.example"}, "name a repository or glob after the host"},
		{[]string{"--from", "b.example/x", "team/app"}, "not as arguments"},
		{[]string{"--to", "a.example/edge"}, "--to-prefix edge"},
		{[]string{"--to", "ftp://a.example"}, "want http:// or https://"},
		{[]string{"--to", "a.example", "--to-prefix", "Bad Prefix"}, "--to-prefix"},
		{[]string{"--to", "a.example", "--username", "ci"}, "--username needs --password-stdin"},
		{[]string{"--to", "a.example", "--password-stdin"}, "--password-stdin needs --username"},
		{[]string{"--to", "a.example", "--jobs", "0"}, "--jobs 0"},
		{[]string{"--to", "a.example", "--platform", "linux"}, "--platform: platform \"linux\""},
		{[]string{"--to", "a.example", "team/[x"}, `repository glob "team/[x"`},
		{[]string{"--to", "a.example", "--config", missing}, "none.toml"},
	} {
		_, err := run(t, append([]string{"replicate"}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("replicate %q = %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	err := printStatus(&b, []replicate.RemoteStatus{
		{Name: "central", Kind: "push", URL: "https://c.example", LastRun: now.Add(-3 * time.Second), Queued: 2, Lag: 90 * time.Second,
			Items: 5, Bytes: 1024, LastError: "connection refused", LastErrorAt: now.Add(-time.Second)},
		{Name: "centre", Kind: "pull", URL: "https://c.example"},
	}, now)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if err != nil || len(lines) != 3 {
		t.Fatalf("printStatus = %v:\n%s", err, b.String())
	}
	for i, want := range [][]string{
		{"central", "push", "3s ago", "2", "1m30s", "5", "1024", "1s ago: connection refused"},
		{"centre", "pull", "-"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("printStatus line %d = %q, want %q in it", i+1, lines[i+1], w)
			}
		}
	}
}
