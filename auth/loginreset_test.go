package auth_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/nora-registry/nora/auth"
)

// TestLoginBackoffNotResetByOthers: guesses at alice's password are
// counted for the address and for alice; a success of someone else from
// the same address (bob's password, a robot token sent under alice's
// name, bob's refresh token) resets neither, so the guesses still back
// off. Failures for alice from many addresses back off alice's password
// logins, and nothing else.
func TestLoginBackoffNotResetByOthers(t *testing.T) {
	const attacker = "198.51.100.1"
	limits := func(rl *auth.RateLimitConfig) {
		rl.Auth = auth.RateRule{} // the back-off alone
		rl.LoginFailures, rl.LoginBackoff, rl.LoginMaxBackoff = 3, "1h", "1h"
	}
	wrongAlice := func(srv loginServer) *http.Request {
		req, _ := http.NewRequest("GET", srv.URL+"/auth/token?service=nora", nil)
		req.SetBasicAuth("alice", "wrong")
		return req
	}
	for name, success := range map[string]func(t *testing.T, srv loginServer) *http.Request{
		"bob's password": func(t *testing.T, srv loginServer) *http.Request {
			req, _ := http.NewRequest("GET", srv.URL+"/auth/token?service=nora", nil)
			req.SetBasicAuth("bob", "bob-pw")
			return req
		},
		"a robot token under alice's name": func(t *testing.T, srv loginServer) *http.Request {
			token, err := srv.robots.Create(t.Context(), "bot", []string{"pull:team/**"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", srv.URL+"/auth/token?service=nora", nil)
			req.SetBasicAuth("alice", token)
			return req
		},
		"bob's refresh token": func(t *testing.T, srv loginServer) *http.Request {
			return postForm(srv.URL+"/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken(t, srv, "bob", "bob-pw")}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newLoginServer(t, limits)
			for i, want := range []int{401, 401, 200, 401} { // the success comes between the 2nd and 3rd guess
				req := wrongAlice(srv)
				if want == 200 {
					req = success(t, srv)
				}
				if got, _, _ := do(t, req, attacker); got != want {
					t.Fatalf("call %d = %d, want %d", i+1, got, want)
				}
			}
			if got, _, code := do(t, wrongAlice(srv), attacker); got != 429 || code != "TOOMANYREQUESTS" {
				t.Errorf("4th guess at alice's password after %s = %d %s, want 429 TOOMANYREQUESTS", name, got, code)
			}
			if got, _, _ := do(t, wrongAlice(srv), "198.51.100.7"); got != 429 {
				t.Errorf("a guess at alice's password from another address = %d, want 429 (alice backs off)", got)
			}
		})
	}

	// Guesses spread over addresses still back alice off, not bob.
	srv := newLoginServer(t, limits)
	for i, addr := range []string{"198.51.100.11", "198.51.100.12", "198.51.100.13"} {
		if got, _, _ := do(t, wrongAlice(srv), addr); got != 401 {
			t.Fatalf("guess %d from %s = %d, want 401", i+1, addr, got)
		}
	}
	if got, _, code := do(t, wrongAlice(srv), "198.51.100.14"); got != 429 || code != "TOOMANYREQUESTS" {
		t.Errorf("4th guess at alice's password, from a 4th address = %d %s, want 429", got, code)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/auth/token?service=nora", nil)
	req.SetBasicAuth("bob", "bob-pw")
	if got, _, _ := do(t, req, "198.51.100.14"); got != 200 {
		t.Errorf("bob from that address = %d, want 200", got)
	}
	// A robot token works under any name, so alice's back-off is not its:
	// failed logins under the name CI jobs send can't block them.
	token, err := srv.robots.Create(t.Context(), "bot", []string{"pull:team/**"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/auth/token?service=nora", nil)
	req.SetBasicAuth("alice", token)
	if got, _, _ := do(t, req, "198.51.100.15"); got != 200 {
		t.Errorf("a robot token under alice's name while alice backs off = %d, want 200", got)
	}
}
