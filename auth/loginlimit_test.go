package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
)

// loginServer serves a registry and its token service as serve does, with
// one limiter for both. Requests come from 127.0.0.1, a trusted proxy, so
// X-Forwarded-For picks the client address. alice's password is
// alice-pw, bob's bob-pw.
type loginServer struct {
	*httptest.Server
	metrics *prometheus.Registry
	robots  *auth.Robots
}

func newLoginServer(t *testing.T, edit func(*auth.RateLimitConfig)) loginServer {
	t.Helper()
	store := auth.OpenTestStore(t)
	cfg := auth.DefaultConfig()
	cfg.Users = aliceAndBob()
	cfg.Rules = []auth.RuleConfig{{Users: []string{"alice", "bob"}, Permissions: []string{"*:team/**"}}}

	rl := auth.DefaultRateLimitConfig()
	rl.TrustedProxies = []string{"127.0.0.1"}
	edit(&rl)
	if err := rl.Validate(); err != nil {
		t.Fatal(err)
	}
	limiter := auth.NewRateLimiter(rl)
	reg := prometheus.NewRegistry()
	if err := limiter.Register(reg); err != nil {
		t.Fatal(err)
	}
	robots := auth.NewRobots(store)
	svc, err := auth.New(cfg, t.TempDir(), zerolog.Nop(), auth.WithRateLimiter(limiter), auth.WithMetrics(reg), auth.WithRobots(robots))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/token", svc.TokenHandler())
	mux.Handle("/", registry.New(store, registry.WithAuthorizer(limiter.Authorizer(svc))))
	srv := httptest.NewServer(limiter.Middleware(mux))
	t.Cleanup(srv.Close)
	return loginServer{srv, reg, robots}
}

// do sends req as the client at addr and returns the status, the
// Retry-After header and the error code of the body, if any.
func do(t *testing.T, req *http.Request, addr string) (status int, retryAfter, code string) {
	t.Helper()
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct{ Errors []struct{ Code string } }
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		code = e.Errors[0].Code
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), code
}

// counter returns the value of the counter name{labels} in reg, 0 if it
// has not been counted.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestLoginBackoffOverHTTP checks every way to send a credential: after
// login_failures wrong ones from an address, its next attempt is refused
// with 429 TOOMANYREQUESTS and Retry-After, even with the right
// credential, while other addresses log in; once the back-off passes the
// right credential works, and the address's next failure backs it off
// again.
func TestLoginBackoffOverHTTP(t *testing.T) {
	const failures = 3
	for _, c := range []struct {
		name string
		// login returns a request logging in as user with password pw;
		// pw "wrong" is a wrong credential.
		login func(t *testing.T, srv loginServer, user, pw string) *http.Request
		// wantWrong is the status of a wrong credential.
		wantWrong int
	}{
		{"GET /auth/token with Basic", func(t *testing.T, srv loginServer, user, pw string) *http.Request {
			req, _ := http.NewRequest("GET", srv.URL+"/auth/token?service=nora&scope=repository:team/app:pull", nil)
			req.SetBasicAuth(user, pw)
			return req
		}, 401},
		{"POST /auth/token password grant", func(t *testing.T, srv loginServer, user, pw string) *http.Request {
			return postForm(srv.URL+"/auth/token", url.Values{"grant_type": {"password"}, "username": {user},
				"password": {pw}})
		}, 401},
		{"POST /auth/token refresh_token grant", func(t *testing.T, srv loginServer, user, pw string) *http.Request {
			if pw == "wrong" {
				return postForm(srv.URL+"/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not.a.token"}})
			}
			return postForm(srv.URL+"/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken(t, srv, user, pw)}})
		}, 401},
		{"Basic straight to /v2/", func(t *testing.T, srv loginServer, user, pw string) *http.Request {
			req, _ := http.NewRequest("GET", srv.URL+"/v2/", nil)
			req.SetBasicAuth(user, pw)
			return req
		}, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newLoginServer(t, func(rl *auth.RateLimitConfig) {
				rl.Auth = auth.RateRule{} // the back-off alone
				rl.LoginFailures = failures
				// Long enough that no check below, bcrypt under the
				// race detector included, outlasts it; waited out once.
				rl.LoginBackoff = "2s"
				rl.LoginMaxBackoff = "2s"
			})
			const attacker, other = "198.51.100.1", "198.51.100.2"
			for i := range failures {
				if got, _, _ := do(t, c.login(t, srv, "alice", "wrong"), attacker); got != c.wantWrong {
					t.Fatalf("wrong credential %d = %d, want %d", i+1, got, c.wantWrong)
				}
			}
			status, retry, code := do(t, c.login(t, srv, "alice", "alice-pw"), attacker)
			if secs, err := strconv.Atoi(retry); status != 429 || code != "TOOMANYREQUESTS" || err != nil || secs < 1 {
				t.Fatalf("right credential while backing off = %d %s, Retry-After %q; want 429 TOOMANYREQUESTS, Retry-After in seconds", status, code, retry)
			}
			// bob, as a check of alice's password from there would be
			// cached, and a cached check is no login attempt.
			if got, _, _ := do(t, c.login(t, srv, "bob", "bob-pw"), other); got != 200 {
				t.Errorf("right credential from another address = %d, want 200", got)
			}
			if got := counter(t, srv.metrics, "nora_rate_limited_total", map[string]string{"limit": "login_backoff", "by": "ip"}); got != 1 {
				t.Errorf("nora_rate_limited_total{limit=login_backoff,by=ip} = %v, want 1", got)
			}
			reason := "bad_credentials"
			if strings.Contains(c.name, "refresh") {
				reason = "invalid_refresh_token"
			}
			if got := counter(t, srv.metrics, "nora_auth_failures_total", map[string]string{"reason": reason}); got != failures {
				t.Errorf("nora_auth_failures_total{reason=%s} = %v, want %d", reason, got, failures)
			}

			// Wait out the back-off: refused attempts don't prolong it.
			deadline := time.Now().Add(10 * time.Second)
			for {
				status, _, _ = do(t, c.login(t, srv, "alice", "alice-pw"), attacker)
				if status != 429 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if status != 200 {
				t.Fatalf("right credential after the back-off = %d, want 200", status)
			}
			// The success does not reset the address's count: its next
			// failure backs it off again. (Wrong credentials: the right
			// one is cached by now, and not throttled.)
			if got, _, _ := do(t, c.login(t, srv, "alice", "wrong"), attacker); got != c.wantWrong {
				t.Fatalf("after a success, a wrong credential = %d, want %d", got, c.wantWrong)
			}
			if got, _, code := do(t, c.login(t, srv, "alice", "wrong"), attacker); got != 429 || code != "TOOMANYREQUESTS" {
				t.Errorf("after a success and one more failure = %d %s, want 429 TOOMANYREQUESTS", got, code)
			}
		})
	}
}

// TestCachedBasicNotThrottled: a client sending its checked Basic
// credentials on every call costs no bcrypt, so its address's failed
// logins don't stop it.
func TestCachedBasicNotThrottled(t *testing.T) {
	srv := newLoginServer(t, func(rl *auth.RateLimitConfig) {
		rl.LoginFailures = 1
		rl.LoginBackoff = "1h"
		rl.LoginMaxBackoff = "1h"
	})
	v2 := func(pw string) *http.Request {
		req, _ := http.NewRequest("GET", srv.URL+"/v2/", nil)
		req.SetBasicAuth("alice", pw)
		return req
	}
	const addr = "198.51.100.1"
	if got, _, _ := do(t, v2("alice-pw"), addr); got != 200 {
		t.Fatalf("GET /v2/ as alice = %d, want 200", got)
	}
	if got, _, _ := do(t, v2("wrong"), addr); got != 401 {
		t.Fatalf("GET /v2/ with a wrong password = %d, want 401", got)
	}
	if got, _, code := do(t, v2("wrong"), addr); got != 429 || code != "TOOMANYREQUESTS" {
		t.Fatalf("GET /v2/ backing off = %d %s, want 429 TOOMANYREQUESTS", got, code)
	}
	for i := range 30 { // more than the default auth burst of 20
		if got, _, _ := do(t, v2("alice-pw"), addr); got != 200 {
			t.Fatalf("GET /v2/ %d with the cached password while backing off = %d, want 200", i, got)
		}
	}
}

// TestLoginRatePerUser: the per-identity rate counts a user's logins
// however the password comes, Basic or the password grant's form, from
// any address.
func TestLoginRatePerUser(t *testing.T) {
	srv := newLoginServer(t, func(rl *auth.RateLimitConfig) {
		rl.Auth = auth.RateRule{PerIdentity: 0.001, Burst: 2}
	})
	basic, _ := http.NewRequest("GET", srv.URL+"/auth/token", nil)
	basic.SetBasicAuth("alice", "wrong")
	if got, _, _ := do(t, basic, "198.51.100.1"); got != 401 {
		t.Fatalf("Basic login = %d, want 401", got)
	}
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}}
	if got, _, _ := do(t, postForm(srv.URL+"/auth/token", form), "198.51.100.2"); got != 401 {
		t.Fatalf("password grant = %d, want 401", got)
	}
	form.Set("password", "alice-pw")
	if got, retry, code := do(t, postForm(srv.URL+"/auth/token", form), "198.51.100.3"); got != 429 || code != "TOOMANYREQUESTS" || retry == "" {
		t.Errorf("alice's 3rd login = %d %s, Retry-After %q; want 429 TOOMANYREQUESTS with Retry-After", got, code, retry)
	}
	form.Set("username", "bob")
	if got, _, _ := do(t, postForm(srv.URL+"/auth/token", form), "198.51.100.3"); got != 401 {
		t.Errorf("bob's login = %d, want 401", got)
	}
	if got := counter(t, srv.metrics, "nora_rate_limited_total", map[string]string{"limit": "auth", "by": "identity"}); got != 1 {
		t.Errorf("nora_rate_limited_total{limit=auth,by=identity} = %v, want 1", got)
	}
}

// refreshToken returns a fresh refresh token of user, asked from an
// address that is not backing off.
func refreshToken(t *testing.T, srv loginServer, user, pw string) string {
	t.Helper()
	req := postForm(srv.URL+"/auth/token", url.Values{"grant_type": {"password"}, "username": {user},
		"password": {pw}, "access_type": {"offline"}})
	req.Header.Set("X-Forwarded-For", "203.0.113.99")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.RefreshToken == "" {
		t.Fatalf("offline password grant = %d, %v, no refresh token", resp.StatusCode, err)
	}
	return tok.RefreshToken
}

func postForm(u string, form url.Values) *http.Request {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
