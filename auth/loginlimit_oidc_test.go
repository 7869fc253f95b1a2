package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestIDTokenLoginBackoff: ID tokens that don't verify count as failed
// logins, wherever they are sent; the address then backs off, and a
// verified token, once cached, is not throttled.
func TestIDTokenLoginBackoff(t *testing.T) {
	is := newIssuer(t)
	good := is.token(t, githubClaims(is.srv.URL, "my-org/app", "refs/heads/main"))
	foreign := newIssuer(t)
	bad := sign(t, foreign.keys[foreign.kid], is.kid, githubClaims(is.srv.URL, "my-org/app", "refs/heads/main"))
	form := func(h func(*Service) http.Handler, field string, extra url.Values) func(*Service, string) *httptest.ResponseRecorder {
		return func(s *Service, tok string) *httptest.ResponseRecorder {
			f := url.Values{field: {tok}}
			for k, v := range extra {
				f[k] = v
			}
			r := httptest.NewRequest("POST", "/auth/token", strings.NewReader(f.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h(s).ServeHTTP(w, r)
			return w
		}
	}
	for _, c := range []struct {
		name  string
		login func(s *Service, tok string) *httptest.ResponseRecorder
	}{
		{"POST /auth/oidc/token", form((*Service).OIDCHandler, "id_token", nil)},
		{"token exchange grant", form((*Service).TokenHandler, "subject_token", url.Values{"grant_type": {grantTokenExchange}})},
		{"ID token as Basic password", func(s *Service, tok string) *httptest.ResponseRecorder {
			r := httptest.NewRequest("GET", "/auth/token", nil)
			r.SetBasicAuth("oidc", tok)
			w := httptest.NewRecorder()
			s.TokenHandler().ServeHTTP(w, r)
			return w
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newOIDCService(t, is)
			l, clk := newTestLimiter(t, func(c *RateLimitConfig) {
				c.Auth = RateRule{}
				c.LoginFailures = 2
			})
			s.limiter = l
			for i := range 2 {
				if w := c.login(s, bad); w.Code != 401 {
					t.Fatalf("forged token %d = %d, want 401", i+1, w.Code)
				}
			}
			w := c.login(s, good)
			var body struct{ Errors []struct{ Code string } }
			json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != 429 || w.Header().Get("Retry-After") != "1" || len(body.Errors) != 1 || body.Errors[0].Code != "TOOMANYREQUESTS" {
				t.Fatalf("valid token while backing off = %d, Retry-After %q, %s; want 429, 1, TOOMANYREQUESTS", w.Code, w.Header().Get("Retry-After"), w.Body)
			}
			clk.advance(time.Second)
			if w := c.login(s, good); w.Code != 200 {
				t.Fatalf("valid token after the back-off = %d %s, want 200", w.Code, w.Body)
			}
			for range 2 {
				c.login(s, bad)
			}
			if w := c.login(s, bad); w.Code != 429 {
				t.Errorf("forged token after 2 more failures = %d, want 429", w.Code)
			}
			if w := c.login(s, good); w.Code != 200 {
				t.Errorf("cached valid token while backing off = %d, want 200", w.Code)
			}
		})
	}
}
