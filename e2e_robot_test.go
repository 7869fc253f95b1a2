package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ERobotTokens creates a robot token with the CLI while the binary
// serves (over its admin socket), pushes with skopeo using it as the
// password, revokes it, and lists tokens again once the server is stopped
// (straight from the store).
func TestE2ERobotTokens(t *testing.T) {
	skopeo := needTool(t, "skopeo", installHint)
	s := startAuthServer(t)
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(registryBin, append(args, "--config", s.config)...).Output()
		if ee, ok := err.(*exec.ExitError); ok {
			err = &cliError{err, string(ee.Stderr)}
		}
		return strings.TrimSpace(string(out)), err
	}
	token, err := cli("token", "create", "--name", "ci-bot", "--permissions", "push:team/robot/**,pull:team/**", "--expires", "1h")
	if err != nil || !strings.HasPrefix(token, "nora_rbt_") {
		t.Fatalf("registry token create = %q, %v", token, err)
	}

	dir := t.TempDir()
	env, policy := containersConf(t, dir)
	src := filepath.Join(dir, "src")
	writeLayout(t, src, ociImage(t), "v1")
	copyTo := func(repo string) error {
		cmd := exec.Command(skopeo, "--policy", policy, "copy", "--dest-tls-verify=false", "--dest-creds", "ci:"+token,
			"oci:"+src+":v1", "docker://"+s.host()+"/"+repo+":v1")
		cmd.Env = append(cmd.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return &cliError{err, string(out)}
		}
		return nil
	}
	if err := copyTo("team/robot/app"); err != nil {
		t.Fatalf("skopeo copy with the robot token = %v", err)
	}
	if err := copyTo("team/other"); err == nil {
		t.Error("skopeo copy to team/other with the robot token succeeded, want denied")
	}
	if _, err := cli("token", "revoke", "ci-bot"); err != nil {
		t.Fatalf("registry token revoke = %v", err)
	}
	if err := copyTo("team/robot/app2"); err == nil {
		t.Error("skopeo copy with the revoked robot token succeeded")
	}

	s.stop()
	if _, err := cli("token", "create", "--name", "offline", "--permissions", "pull:**"); err != nil {
		t.Fatalf("registry token create with the server stopped = %v", err)
	}
	if list, err := cli("token", "list"); err != nil || !strings.Contains(list, "offline") || strings.Contains(list, "ci-bot") {
		t.Errorf("registry token list with the server stopped = %q, %v", list, err)
	}
}

type cliError struct {
	err    error
	stderr string
}

func (e *cliError) Error() string { return e.err.Error() + ": " + e.stderr }
