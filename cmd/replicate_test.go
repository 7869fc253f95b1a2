package cmd

import (
	"path/filepath"
	"strings"
	"testing"
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
