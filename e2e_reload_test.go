package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// TestE2EReload changes a running server's users and rules by editing its
// file: SIGHUP applies a valid file, `registry reload` refuses a broken
// one with its problems and keeps the running settings, and a key that
// needs a restart is named. Dashboard sessions and robot tokens keep
// working across reloads.
func TestE2EReload(t *testing.T) {
	aliceHash, _ := bcrypt.GenerateFromPassword([]byte("alice-secret"), bcrypt.MinCost)
	bobHash, _ := bcrypt.GenerateFromPassword([]byte("bob-secret"), bcrypt.MinCost)
	alice := fmt.Sprintf("[auth]\n[[auth.users]]\nname = \"alice\"\npassword = %q\n[[auth.rules]]\nusers = [\"alice\"]\npermissions = [\"*:**\"]\n", aliceHash)
	bob := fmt.Sprintf("[[auth.users]]\nname = \"bob\"\npassword = %q\n[[auth.rules]]\nusers = [\"bob\"]\npermissions = [\"*:bob/**\"]\n", bobHash)
	s := startServerWith(t, alice)
	original, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	push := func(repo string, a authn.Authenticator) error {
		ref, _ := name.ParseReference(s.host()+"/"+repo+":v1", name.Insecure)
		return remote.Write(ref, img, remote.WithAuth(a))
	}
	bobAuth := &authn.Basic{Username: "bob", Password: "bob-secret"}
	if err := push("bob/app", bobAuth); err == nil {
		t.Fatal("push as bob before he is configured succeeded")
	}
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(registryBin, append(args, "--config", s.config)...).Output()
		if ee, ok := err.(*exec.ExitError); ok {
			out = append(out, ee.Stderr...)
		}
		return strings.TrimSpace(string(out)), err
	}
	token, err := cli("token", "create", "--name", "ci", "--permissions", "push:robot/**,pull:robot/**")
	if err != nil {
		t.Fatalf("registry token create = %q, %v", token, err)
	}
	session := dashboardLogin(t, s, "alice", "alice-secret")

	// A user and a rule added, applied on SIGHUP.
	if err := os.WriteFile(s.config, append(append([]byte{}, original...), bob...), 0o644); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.cmd.Process.Signal(syscall.SIGHUP)
	s.mu.Unlock()
	waitLog(t, s, "configuration reloaded", 1)
	if err := push("bob/app", bobAuth); err != nil {
		t.Fatalf("push as bob after the reload = %v", err)
	}
	if err := push("robot/app", &authn.Basic{Username: "ci", Password: token}); err != nil {
		t.Errorf("push with the robot token after the reload = %v", err)
	}
	checkSession(t, s, session)

	// A broken file is refused whole, with its problems, and bob keeps
	// his rights.
	broken := strings.Replace(string(original)+bob, "[[auth.rules]]\nusers = [\"bob\"]", "[[auth.rules]]\nuser = [\"bob\"]", 1)
	if err := os.WriteFile(s.config, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := cli("reload")
	if err == nil || !strings.Contains(out, `auth.rules[1].user: unknown key, did you mean "users"?`) {
		t.Errorf("registry reload with a broken file = %q, %v; want a failure naming auth.rules[1].user", out, err)
	}
	waitLog(t, s, "configuration refused; the running settings stay", 1)
	if err := push("bob/app2", bobAuth); err != nil {
		t.Errorf("push as bob after a refused reload = %v", err)
	}

	// A key that needs a restart is named, the rest applies: bob goes.
	moved := strings.Replace(string(original), `listen = "127.0.0.1:0"`, `listen = "127.0.0.1:1"`, 1)
	if err := os.WriteFile(s.config, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = cli("reload")
	if err != nil || !strings.Contains(out, "warning: changed keys that apply only after a restart: server.listen") {
		t.Errorf("registry reload with a new listen address = %q, %v; want a warning naming server.listen", out, err)
	}
	if err := push("bob/app3", bobAuth); err == nil {
		t.Error("push as bob after he was removed succeeded")
	}
	checkSession(t, s, session)

	// log.access applies at once: a request served while it is off
	// leaves no line, one served after it is back on does.
	for _, access := range []string{"false", "true"} {
		f := strings.Replace(string(original), "level = \"info\"\n", "level = \"info\"\naccess = "+access+"\n", 1)
		if err := os.WriteFile(s.config, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := cli("reload"); err != nil || strings.Contains(out, "warning") {
			t.Fatalf("registry reload with log.access = %s: %q, %v; want it applied", access, out, err)
		}
		s.do(t, http.MethodGet, "/v2/access-"+access+"/tags/list", nil, nil)
	}
	for deadline := time.Now().Add(10 * time.Second); !loggedPath(s, "/v2/access-true/tags/list"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no access line for a request served after log.access was turned back on")
		}
	}
	if loggedPath(s, "/v2/access-false/tags/list") {
		t.Error("a request served while log.access was off has an access line")
	}
}

// loggedPath reports whether the server wrote an access line for path.
func loggedPath(s *e2eServer, path string) bool {
	for _, l := range s.logLines() {
		if l["message"] == "request" && l["path"] == path {
			return true
		}
	}
	return false
}

// dashboardLogin logs into the dashboard and returns the session cookie.
func dashboardLogin(t *testing.T, s *e2eServer, user, password string) *http.Cookie {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(s.url("/ui/login"), url.Values{"user": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "nora_session" {
			return ck
		}
	}
	t.Fatalf("POST /ui/login as %s = %s, no session cookie", user, resp.Status)
	return nil
}

// checkSession requires the session to still show alice's view, which
// holds bob's repository.
func checkSession(t *testing.T, s *e2eServer, session *http.Cookie) {
	t.Helper()
	resp, body := s.do(t, "GET", "/api/v1/repositories", http.Header{"Cookie": {session.String()}}, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "bob/app") {
		t.Errorf("GET /api/v1/repositories with the session = %s %s, want alice's view", resp.Status, body)
	}
	if resp, body := s.do(t, "GET", "/api/v1/repositories", nil, nil); strings.Contains(string(body), "bob/app") {
		t.Errorf("GET /api/v1/repositories without the session = %s %s, want bob's repository hidden", resp.Status, body)
	}
}

// waitLog waits until the server has logged message n times.
func waitLog(t *testing.T, s *e2eServer, message string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		count := 0
		for _, l := range s.logLines() {
			if l["message"] == message {
				count++
			}
		}
		if count >= n {
			return
		}
	}
	t.Fatalf("the server did not log %q %d times within 10s", message, n)
}
