package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestServiceReload: a reloaded service applies the new users and rules,
// still accepts the tokens, refresh tokens and robot tokens the old one
// issued, and alone follows robot revocations once the old is closed.
func TestServiceReload(t *testing.T) {
	old, robots := newRobotService(t)
	robot, err := robots.Create(t.Context(), "ci-bot", []string{"pull:shared/**"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, access := getToken(t, old, "alice", "alice-pw", "repository:team/app:pull")
	_, refresh := getTokenOffline(t, old, "alice", "alice-pw")

	cfg := old.cfg
	cfg.Users = append(cfg.Users[:1:1], UserConfig{Name: "carol", Password: hash(t, "carol-pw")})
	cfg.Rules = append(cfg.Rules, RuleConfig{Users: []string{"carol"}, Permissions: []string{"push:carol/**"}})
	n, err := old.Reload(cfg, nil)
	if err != nil {
		t.Fatalf("Reload = %v", err)
	}
	old.Close()

	if id, err := n.Authenticate(basicReq("carol", "carol-pw")); err != nil || !id.Grants.Allows("carol/app", ActionPush) {
		t.Errorf("carol after the reload = %+v, %v, want push on carol/**", id, err)
	}
	if _, err := n.Authenticate(basicReq("bob", "bob-pw")); err == nil {
		t.Error("bob, removed by the reload, still authenticates")
	}
	if id, err := n.Authenticate(bearer(access.Token)); err != nil || id.Name != "alice" {
		t.Errorf("token issued before the reload = %+v, %v, want alice's", id, err)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "scope": {"repository:team/app:pull"}, "service": {"nora"}}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/auth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	n.TokenHandler().ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("refresh token issued before the reload = %d %s, want 200", w.Code, w.Body)
	}
	if _, err := n.Authenticate(basicReq("x", robot)); err != nil {
		t.Fatalf("robot token after the reload = %v", err)
	}
	if err := robots.Revoke(t.Context(), "ci-bot"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Authenticate(basicReq("x", robot)); err == nil {
		t.Error("robot token revoked after the reload still authenticates")
	}
	robots.mu.Lock()
	hooks := len(robots.onRevoke)
	robots.mu.Unlock()
	if hooks != 1 {
		t.Errorf("revocation hooks after Close = %d, want the new service's only", hooks)
	}
	bad := cfg
	bad.Service = ""
	if _, err := n.Reload(bad, nil); err == nil {
		t.Error("Reload(invalid) = nil, want the error")
	}
}
