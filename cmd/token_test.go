package cmd

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCmd runs the registry CLI with args and returns its stdout.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := runCmdSay(t, args...)
	return out, err
}

// authConfig writes a config with [auth] on, storage in dir/data, and
// returns its path.
func authConfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "nora.toml")
	err := os.WriteFile(path, fmt.Appendf(nil, `
[server]
listen = "127.0.0.1:0"
[storage]
root = %q
[log]
format = "json"
[auth]
`, filepath.Join(dir, "data")), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTokenCommandsWithoutServer(t *testing.T) {
	dir := t.TempDir()
	config := authConfig(t, dir)
	createStore(t, filepath.Join(dir, "data"))
	token, err := runCmd(t, "token", "create", "-c", config, "--name", "ci-bot", "--permissions", "push:team-a/**,pull:{a,b}/**", "--permissions", "pull:shared/*", "--expires", "90d")
	if err != nil || !strings.HasPrefix(token, "nora_rbt_") {
		t.Fatalf("token create = %q, %v", token, err)
	}
	list, err := runCmd(t, "token", "list", "-c", config)
	if err != nil || !strings.Contains(list, "ci-bot") || !strings.Contains(list, "push:team-a/**,pull:{a,b}/**,pull:shared/*") || strings.Contains(list, strings.TrimSpace(token)) {
		t.Fatalf("token list = %q, %v", list, err)
	}
	for _, args := range [][]string{
		{"create", "--name", "ci-bot", "--permissions", "pull:x"}, // taken
		{"create", "--name", "x", "--permissions", "pull:x", "--expires", "soon"},
		{"create", "--name", "x", "--permissions", "steal:x"},
		{"revoke", "nobody"},
	} {
		if out, err := runCmd(t, append(append([]string{"token"}, args...), "-c", config)...); err == nil {
			t.Errorf("token %q = %q, nil error, want an error", args, out)
		}
	}
	if _, err := runCmd(t, "token", "revoke", "-c", config, "ci-bot"); err != nil {
		t.Fatalf("token revoke ci-bot = %v", err)
	}
	if list, _ := runCmd(t, "token", "list", "-c", config); strings.Contains(list, "ci-bot") {
		t.Errorf("token list after revoke = %q", list)
	}
}

// TestTokenCommandsWithServer creates and revokes a robot token while the
// server holds the store, and uses it against the server in between.
func TestTokenCommandsWithServer(t *testing.T) {
	config := authConfig(t, t.TempDir())
	listening, stop := serveConfig(t, config)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	addr, _ := listening["addr"].(string)

	out, err := runCmd(t, "token", "create", "-c", config, "--name", "ci-bot", "--permissions", "push:team-a/**", "--expires", "1h")
	token := strings.TrimSpace(out)
	if err != nil || !strings.HasPrefix(token, "nora_rbt_") {
		t.Fatalf("token create while serving = %q, %v", out, err)
	}
	upload := func() int {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v2/team-a/app/blobs/uploads/", nil)
		req.SetBasicAuth("anyone", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := upload(); code != http.StatusAccepted {
		t.Fatalf("POST upload with the robot token = %d, want 202", code)
	}
	if list, err := runCmd(t, "token", "list", "-c", config); err != nil || !strings.Contains(list, "ci-bot") {
		t.Fatalf("token list while serving = %q, %v", list, err)
	}
	if _, err := runCmd(t, "token", "revoke", "-c", config, "ci-bot"); err != nil {
		t.Fatalf("token revoke while serving = %v", err)
	}
	if code := upload(); code != http.StatusUnauthorized {
		t.Errorf("POST upload with the revoked token = %d, want 401", code)
	}
	stopped = true
	if err := stop(); err != nil {
		t.Errorf("serve = %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(config), "data", "admin.sock")); !os.IsNotExist(err) {
		t.Errorf("admin socket after shutdown: %v, want removed", err)
	}
}

func TestParseExpires(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "12h": 12 * time.Hour, "never": 0} {
		if got, err := parseExpires(in); err != nil || got != want {
			t.Errorf("parseExpires(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0d", "-1h", "d", "1y", "0s"} {
		if got, err := parseExpires(bad); err == nil {
			t.Errorf("parseExpires(%q) = %v, want an error", bad, got)
		}
	}
}
