package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/storage"
)

// newRobotService is newService with robot tokens kept in a real store;
// the rules also grant robot "ci-bot" pull on shared/**.
func newRobotService(t *testing.T) (*Service, *Robots) {
	t.Helper()
	store := OpenTestStore(t)
	robots := NewRobots(store)
	cfg := newService(t).cfg
	cfg.Rules = append(cfg.Rules, RuleConfig{Robots: []string{"ci-bot"}, Permissions: []string{"pull:shared/**"}})
	s, err := New(cfg, t.TempDir(), zerolog.Nop(), WithRobots(robots))
	if err != nil {
		t.Fatal(err)
	}
	return s, robots
}

func basicReq(user, pw string) *http.Request {
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth(user, pw)
	return r
}

func TestRobotTokens(t *testing.T) {
	s, robots := newRobotService(t)
	ctx := t.Context()
	token, err := robots.Create(ctx, "ci-bot", []string{"push:team-a/**", "pull:team-a/**"}, 90*24*time.Hour)
	if err != nil || !strings.HasPrefix(token, robotTokenPrefix) || len(token) < len(robotTokenPrefix)+43 {
		t.Fatalf("Create(ci-bot) = %q, %v", token, err)
	}
	if _, err := robots.Create(ctx, "ci-bot", nil, 0); !errors.Is(err, storage.ErrRobotExists) {
		t.Errorf("Create(ci-bot again) = %v, want ErrRobotExists", err)
	}
	for _, bad := range []struct {
		name  string
		perms []string
	}{{"", nil}, {"Bad Name", nil}, {"../x", nil}, {"ok", []string{"fly:x"}}} {
		if _, err := robots.Create(ctx, bad.name, bad.perms, 0); err == nil {
			t.Errorf("Create(%q, %q) = nil, want an error", bad.name, bad.perms)
		}
	}
	if stored, _ := robots.store.Robots(ctx); len(stored) != 1 || strings.Contains(string(stored[0].Hash), token) || len(stored[0].Hash) != 32 {
		t.Errorf("stored robot = %+v, want only a 32-byte hash of the token", stored)
	}
	list, err := robots.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "ci-bot" || list[0].Expires.Sub(list[0].Created) != 90*24*time.Hour {
		t.Fatalf("List() = %+v, %v", list, err)
	}

	// The token is the password for any user name.
	for _, name := range []string{"ci-bot", "whatever", ""} {
		id, err := s.Authenticate(basicReq(name, token))
		if err != nil || id.Kind != KindRobot || id.Name != "ci-bot" {
			t.Fatalf("Authenticate(%q, robot token) = %+v, %v", name, id, err)
		}
		r := basicReq(name, token)
		for _, c := range []struct {
			repo   string
			action Action
			want   int
		}{
			{"team-a/app", ActionPush, 0}, {"team-a/x/y", ActionPull, 0}, {"shared/base", ActionPull, 0},
			{"team-a/app", ActionDelete, 403}, {"team-b/app", ActionPull, 403}, {"shared/base", ActionPush, 403},
		} {
			if got := statusOf(s.Authorize(r, id, c.repo, c.action)); got != c.want {
				t.Errorf("robot %s %s = %d, want %d", c.action, c.repo, got, c.want)
			}
		}
	}
	// Near misses are refused.
	for _, pw := range []string{token[:len(token)-1], token + "x", robotTokenPrefix, strings.TrimPrefix(token, robotTokenPrefix)} {
		if _, err := s.Authenticate(basicReq("ci-bot", pw)); statusOf(err) != 401 {
			t.Errorf("Authenticate(ci-bot, %q) = %v, want 401", pw, err)
		}
	}

	// At the token endpoint it gets what it asked and may have.
	code, resp := getToken(t, s, "ci-bot", token, "repository:team-a/app:push,pull,delete", "repository:team-b/app:pull")
	id, err := s.Authenticate(bearer(resp.Token))
	if code != 200 || err != nil || id.Name != "ci-bot" || !id.Grants.Allows("team-a/app", ActionPush) ||
		id.Grants.Allows("team-a/app", ActionDelete) || id.Grants.Allows("team-b/app", ActionPull) || resp.RefreshToken != "" {
		t.Fatalf("token for the robot = %d %+v %v", code, id, err)
	}

	// Revoked: refused at once, though its last check is cached.
	if err := robots.Revoke(ctx, "ci-bot"); err != nil {
		t.Fatalf("Revoke(ci-bot) = %v", err)
	}
	if _, err := s.Authenticate(basicReq("x", token)); statusOf(err) != 401 {
		t.Errorf("Authenticate(revoked token) = %v, want 401", err)
	}
	if err := robots.Revoke(ctx, "ci-bot"); !errors.Is(err, storage.ErrRobotNotFound) {
		t.Errorf("Revoke(ci-bot again) = %v, want ErrRobotNotFound", err)
	}
}

func TestRobotTokenExpires(t *testing.T) {
	s, robots := newRobotService(t)
	token, err := robots.Create(t.Context(), "short", []string{"pull:**"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(basicReq("x", token)); err != nil {
		t.Fatalf("Authenticate(fresh robot token) = %v", err)
	}
	s.forget()
	robots.timeNow = func() time.Time { return time.Now().Add(time.Hour) }
	if _, err := s.Authenticate(basicReq("x", token)); statusOf(err) != 401 {
		t.Errorf("Authenticate(expired robot token) = %v, want 401", err)
	}
}

func TestAdminSocket(t *testing.T) {
	store := OpenTestStore(t)
	dir, err := os.MkdirTemp("", "nora")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, AdminSocket)
	if _, err := DialAdmin(path); err == nil {
		t.Fatal("DialAdmin(no socket) = nil error")
	}
	os.WriteFile(path, nil, 0o600) // a stale file from a crash is replaced
	ln, err := ListenAdmin(path)
	if err != nil {
		t.Fatalf("ListenAdmin = %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode = %v, %v, want 0600", fi.Mode(), err)
	}
	robots := NewRobots(store)
	srv := &http.Server{Handler: robots.AdminHandler()}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	c, err := DialAdmin(path)
	if err != nil {
		t.Fatalf("DialAdmin = %v", err)
	}
	ctx := t.Context()
	token, err := c.Create(ctx, "ci-bot", []string{"push:team-a/**"}, 0)
	if err != nil || !strings.HasPrefix(token, robotTokenPrefix) {
		t.Fatalf("Create over the socket = %q, %v", token, err)
	}
	if _, ok := robots.lookup(ctx, token); !ok {
		t.Error("token created over the socket is unknown to the store")
	}
	if _, err := c.Create(ctx, "ci-bot", nil, 0); !errors.Is(err, storage.ErrRobotExists) {
		t.Errorf("Create(ci-bot again) over the socket = %v, want ErrRobotExists", err)
	}
	if _, err := c.Create(ctx, "x", []string{"bad"}, 0); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("Create(bad permission) over the socket = %v, want the permission named", err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "ci-bot" || !list[0].Expires.IsZero() || list[0].Permissions[0] != "push:team-a/**" {
		t.Fatalf("List over the socket = %+v, %v", list, err)
	}
	if err := c.Revoke(ctx, "ci-bot"); err != nil {
		t.Fatalf("Revoke over the socket = %v", err)
	}
	for _, name := range []string{"ci-bot", "../robots"} {
		if err := c.Revoke(ctx, name); !errors.Is(err, storage.ErrRobotNotFound) {
			t.Errorf("Revoke(%q) over the socket = %v, want ErrRobotNotFound", name, err)
		}
	}
}

// TestTokenOutsideItsAccess: a call outside a token's access is sent back
// to the token endpoint (401) when its holder could get the right, and
// denied (403) when not, whoever the token was issued to.
func TestTokenOutsideItsAccess(t *testing.T) {
	s, robots := newRobotService(t)
	robot, err := robots.Create(t.Context(), "ci-bot", []string{"push:team-a/**"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v2/", nil)
	for _, c := range []struct {
		who, user, pw, repo string
		action              Action
		want                int
	}{
		{"anonymous", "", "", "team/app", ActionPull, 401},
		{"anonymous", "", "", "public/x", ActionPush, 401},
		{"robot", "x", robot, "team-a/other", ActionPush, 401},
		{"robot", "x", robot, "shared/base", ActionPull, 401}, // from a rule naming it
		{"robot", "x", robot, "team-b/app", ActionPush, 403},
		{"user", "bob", "bob-pw", "team/app", ActionPull, 401},
		{"user", "bob", "bob-pw", "team/app", ActionPush, 403},
	} {
		code, resp := getToken(t, s, c.user, c.pw, "repository:unrelated/x:pull")
		id, err := s.Authenticate(bearer(resp.Token))
		if code != 200 || err != nil {
			t.Fatalf("token for %s = %d, %v", c.who, code, err)
		}
		if got := statusOf(s.Authorize(r, id, c.repo, c.action)); got != c.want {
			t.Errorf("%s's token: %s %s = %d, want %d", c.who, c.action, c.repo, got, c.want)
		}
	}
}
