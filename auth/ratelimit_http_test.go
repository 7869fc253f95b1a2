package auth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
)

// openAuthorizer lets everyone in under the name of their Basic
// credentials.
type openAuthorizer struct{}

func (openAuthorizer) Authenticate(r *http.Request) (*auth.Identity, error) {
	name, _, _ := r.BasicAuth()
	return &auth.Identity{Name: name, Kind: auth.KindUser}, nil
}

func (openAuthorizer) Authorize(*http.Request, *auth.Identity, string, auth.Action) error { return nil }

// TestRateLimitedResponses checks the 429s a client sees from a real
// registry: from the middleware (per address) and from the Authorizer
// wrapper, rendered by the registry (per identity). Both are
// TOOMANYREQUESTS with a Retry-After in whole seconds.
func TestRateLimitedResponses(t *testing.T) {
	store := auth.OpenTestStore(t)
	cfg := auth.DefaultRateLimitConfig()
	cfg.API = auth.RateRule{PerIP: 0.01, Burst: 5}
	byAddr := auth.NewRateLimiter(cfg)
	cfg.API = auth.RateRule{PerIdentity: 0.5, Burst: 3}
	byIdentity := auth.NewRateLimiter(cfg)
	srv := httptest.NewServer(byAddr.Middleware(registry.New(store, registry.WithAuthorizer(byIdentity.Authorizer(openAuthorizer{})))))
	t.Cleanup(srv.Close)

	get := func(user string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/v2/", nil)
		if user != "" {
			req.SetBasicAuth(user, "x")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	check := func(what string, resp *http.Response, retryAfter string) {
		t.Helper()
		var body struct {
			Errors []struct{ Code, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != retryAfter || len(body.Errors) != 1 || body.Errors[0].Code != "TOOMANYREQUESTS" {
			t.Errorf("%s: GET /v2/ = %d, Retry-After %q, %+v; want 429, Retry-After %s, TOOMANYREQUESTS",
				what, resp.StatusCode, resp.Header.Get("Retry-After"), body, retryAfter)
		}
	}
	// Per identity: alice's burst of 3, then one call per 2s.
	for i := range 3 {
		if resp := get("alice"); resp.StatusCode != 200 {
			t.Fatalf("call %d by alice = %d, want 200", i, resp.StatusCode)
		}
	}
	check("alice's 4th call", get("alice"), "2")
	if resp := get("bob"); resp.StatusCode != 200 {
		t.Fatalf("bob's call = %d, want 200", resp.StatusCode)
	}
	// Per address: the address has now spent its burst of 5; one call per
	// 100s.
	check("a 6th call from the address", get("carol"), "100")
}
