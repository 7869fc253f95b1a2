package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckWarnsPushWithoutPull: a rule set that pushes where it
// cannot pull is reported, and the check still passes.
func TestConfigCheckWarnsPushWithoutPull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nora.toml")
	conf := `[auth]
anonymous = ["pull:public/**"]
[[auth.users]]
name = "alice"
password = "$2a$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE"
[[auth.rules]]
users = ["alice"]
permissions = ["push:team-a/**", "push:public/**"]
`
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "config", "check", path)
	want := path + `: warning: auth.rules[0]: user "alice" may push to "team-a/**" but not pull from it`
	if err != nil || !strings.Contains(out, want) || !strings.HasSuffix(out, path+": ok\n") || strings.Count(out, "warning") != 1 {
		t.Errorf("config check = %q, %v, want one warning %q and ok", out, err, want)
	}
}
