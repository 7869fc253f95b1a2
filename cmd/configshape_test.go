package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadFileEveryProblem: one file with many problems gets them all
// reported, each in plain words with its key, array indexes kept.
func TestLoadFileEveryProblem(t *testing.T) {
	path := fixture("many_problems.toml")
	_, err := LoadFile(path)
	if err == nil {
		t.Fatal("LoadFile(many_problems.toml) = nil, want every problem")
	}
	want := []string{
		`server.listen: want a string like ":5000", got the number 5000`,
		`server.max_connections: want a whole number like 4096, got the string "many"`,
		`server.shutdown_timout: unknown key, did you mean "shutdown_timeout"?`,
		`gc.delete_untagged: want true or false, got the string "yes"`,
		`gc.pace: want a number like 0.02, got the string "fast"`,
		`retention.rules[0].keep_lats: unknown key, did you mean "keep_last"?`,
		`retention.rules[1].repositories: want a list, got the string "team-a/**"`,
		`ui.session_lifetime: environment variable NORA_TEST_UNSET_VARIABLE is not set`,
	}
	got := strings.Split(err.Error(), "\n")
	for _, w := range want {
		if !containsLine(got, path+": "+w) {
			t.Errorf("LoadFile(many_problems.toml) lacks %q; got:\n%s", w, err)
		}
	}
	if len(got) != len(want) {
		t.Errorf("LoadFile(many_problems.toml) = %d problems, want %d:\n%s", len(got), len(want), err)
	}
}

// TestLoadFileValuesAfterShape: with no unknown key or wrong type, every
// invalid value and unreadable file is reported, not only the first.
func TestLoadFileValuesAfterShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nora.toml")
	conf := `[server]
listen = "5000"
idle_timeout = "7d"
tls_cert = "/nonexistent/cert.pem"
tls_key = "/nonexistent/key.pem"
[log]
level = "verbose"
[gc]
grace = "soon"
pace = 2
[auth]
[[auth.users]]
name = "alice"
password = "plain"
[[auth.rules]]
users = ["alice"]
permissions = ["fly:**"]
[[retention.rules]]
repositories = []
[[retention.rules]]
repositories = ["**"]
older_than = "a week"
`
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	want := []string{
		"server.listen: address 5000: missing port in address",
		"server.tls_cert: open /nonexistent/cert.pem: no such file or directory",
		"server.tls_key: open /nonexistent/key.pem: no such file or directory",
		`log.level: unknown level "verbose"`,
		`gc.grace: invalid duration "soon"`,
		`gc.pace: 2: want a share of time above 0 and at most 1`,
		`auth.users[0].password: want a bcrypt hash`,
		`auth.rules[0].permissions: `,
		`retention.rules[0].repositories: must name at least one glob`,
		`retention.rules[1].older_than: invalid duration "a week"`,
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), path+": "+w) {
			t.Errorf("LoadFile = %v, want a line %q", err, w)
		}
	}
	if err != nil && strings.Contains(err.Error(), "idle_timeout") {
		t.Errorf("LoadFile = %v, want idle_timeout = \"7d\" accepted", err)
	}
}

func TestLoadFileBadKeyPair(t *testing.T) {
	dir := t.TempDir()
	cert := fixture("tls/cert.pem")
	key := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nora.toml")
	if err := os.WriteFile(path, []byte("[server]\ntls_cert = \""+cert+"\"\ntls_key = \""+key+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), "server.tls_cert, server.tls_key: tls: ") {
		t.Errorf("LoadFile(unusable key) = %v, want the key pair refused", err)
	}
}

// TestConfigCheckFlags: config check takes its file as an argument, from
// --config or from NORA_CONFIG, and reports every problem.
func TestConfigCheckFlags(t *testing.T) {
	full := fixture("full.toml")
	if out, err := run(t, "config", "check", "-c", full); err != nil || out != full+": ok\n" {
		t.Errorf("config check -c full.toml = %q, %v", out, err)
	}
	t.Setenv("NORA_CONFIG", full)
	if out, err := run(t, "config", "check"); err != nil || out != full+": ok\n" {
		t.Errorf("NORA_CONFIG=full.toml config check = %q, %v", out, err)
	}
	bad := fixture("many_problems.toml")
	if _, err := run(t, "config", "check", bad); err == nil || strings.Count(err.Error(), "\n") < 5 {
		t.Errorf("config check many_problems.toml = %v, want every problem", err)
	}
	t.Setenv("NORA_CONFIG", "")
	if _, err := run(t, "config", "check"); err == nil || !strings.Contains(err.Error(), "no file") {
		t.Errorf("config check without a file = %v, want it asked for", err)
	}
}

// TestServeReportsEveryProblem: serve refuses a bad file with the same
// complete list config check prints.
func TestServeReportsEveryProblem(t *testing.T) {
	bad := fixture("many_problems.toml")
	_, checkErr := run(t, "config", "check", bad)
	_, serveErr := run(t, "serve", "-c", bad)
	if checkErr == nil || serveErr == nil || checkErr.Error() != serveErr.Error() {
		t.Errorf("serve = %v\nwant config check's\n%v", serveErr, checkErr)
	}
}

func TestLevenshtein(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"shutdown_timout", "shutdown_timeout", 1}, {"keep_lats", "keep_last", 2}, {"abc", "", 3}, {"srever", "server", 2}} {
		if got := levenshtein(tc.a, tc.b); got != tc.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func containsLine(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}
