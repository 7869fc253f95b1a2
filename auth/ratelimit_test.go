package auth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// clock is a manual clock for a RateLimiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(t *testing.T, edit func(*RateLimitConfig)) (*RateLimiter, *clock) {
	t.Helper()
	cfg := DefaultRateLimitConfig()
	edit(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	l := NewRateLimiter(cfg)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l.now = c.now
	return l, c
}

// req is a request from addr (host:port), with X-Forwarded-For xff and
// Basic credentials for user if set.
func req(addr, xff, user string) *http.Request {
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.RemoteAddr = addr
	if xff != "" {
		r.Header.Set("X-Forwarded-For", xff)
	}
	if user != "" {
		r.SetBasicAuth(user, "pw")
	}
	return r
}

func TestRateLimitConfigValidate(t *testing.T) {
	for _, c := range []struct {
		key  string
		edit func(*RateLimitConfig)
	}{
		{"rate_limit.trusted_proxies[1]", func(c *RateLimitConfig) { c.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/33"} }},
		{"rate_limit.trusted_proxies[0]", func(c *RateLimitConfig) { c.TrustedProxies = []string{"proxy.local"} }},
		{"rate_limit.max_clients", func(c *RateLimitConfig) { c.MaxClients = 0 }},
		{"rate_limit.api.per_ip", func(c *RateLimitConfig) { c.API.PerIP = -1 }},
		{"rate_limit.auth.per_identity", func(c *RateLimitConfig) { c.Auth.PerIdentity = -0.5 }},
		{"rate_limit.api.burst", func(c *RateLimitConfig) { c.API = RateRule{PerIP: 10} }},
		{"rate_limit.login_failures", func(c *RateLimitConfig) { c.LoginFailures = -1 }},
		{"rate_limit.login_backoff", func(c *RateLimitConfig) { c.LoginBackoff = "soon" }},
		{"rate_limit.login_max_backoff", func(c *RateLimitConfig) { c.LoginMaxBackoff = "0s" }},
		{"rate_limit.login_max_backoff", func(c *RateLimitConfig) { c.LoginBackoff, c.LoginMaxBackoff = "1m", "30s" }},
	} {
		cfg := DefaultRateLimitConfig()
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.key+":") {
			t.Errorf("Validate(bad %s) = %v, want an error naming it", c.key, err)
		}
	}
	cfg := DefaultRateLimitConfig()
	cfg.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.1", "fd00::/8", "::1"}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate(defaults with proxies) = %v", err)
	}
}

func TestClientIP(t *testing.T) {
	l, _ := newTestLimiter(t, func(c *RateLimitConfig) { c.TrustedProxies = []string{"10.0.0.0/8", "fd00::1"} })
	for _, c := range []struct {
		peer, xff, want string
	}{
		{"203.0.113.7:5000", "", "203.0.113.7"},
		{"203.0.113.7:5000", "198.51.100.1", "203.0.113.7"}, // untrusted peer: header ignored
		{"10.1.2.3:5000", "", "10.1.2.3"},
		{"10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},
		{"10.1.2.3:5000", "1.1.1.1, 198.51.100.1", "198.51.100.1"},       // the client forged the first hop
		{"10.1.2.3:5000", "198.51.100.1, 10.9.9.9", "198.51.100.1"},      // two proxies
		{"10.1.2.3:5000", "10.7.7.7, 10.9.9.9", "10.7.7.7"},              // all trusted: the left-most
		{"10.1.2.3:5000", "198.51.100.1, garbage, 10.9.9.9", "10.9.9.9"}, // stop at a garbled hop
		{"[fd00::1]:5000", "2001:db8::5", "2001:db8::5"},                 // IPv6 proxy
		{"[fd00::2]:5000", "198.51.100.1", "fd00::2"},                    // not that one
		{"[::ffff:10.1.2.3]:5000", "198.51.100.1", "198.51.100.1"},       // IPv4-mapped peer
		{"10.1.2.3:5000", "[2001:db8::5]", "10.1.2.3"},                   // brackets are not an address
		{"10.1.2.3:5000", "::ffff:198.51.100.1", "198.51.100.1"},         // mapped hop
		{"[fe80::1%eth0]:5000", "", "fe80::1"},                           // zone dropped
	} {
		got := l.ClientIP(req(c.peer, c.xff, ""))
		if got != netip.MustParseAddr(c.want) {
			t.Errorf("ClientIP(peer %s, X-Forwarded-For %q) = %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	r := req("10.1.2.3:5000", "", "")
	r.Header.Add("X-Forwarded-For", "1.1.1.1")
	r.Header.Add("X-Forwarded-For", "198.51.100.9")
	if got := l.ClientIP(r); got.String() != "198.51.100.9" {
		t.Errorf("ClientIP(two X-Forwarded-For headers) = %s, want the last one's 198.51.100.9", got)
	}
}

// TestRateLimits runs a sequence of calls against one limiter per case;
// each step says whether it is allowed and, when refused, the Retry-After.
func TestRateLimits(t *testing.T) {
	type step struct {
		call      string // api, identity, auth
		peer      string // host, or identity name for "identity"
		user      string // Basic user for "auth"
		advance   time.Duration
		wantRetry time.Duration // 0: allowed
	}
	api, id, auth := "api", "identity", "auth"
	tests := []struct {
		name  string
		edit  func(*RateLimitConfig)
		steps []step
	}{
		{"api per address: burst, then the rate", func(c *RateLimitConfig) { c.API = RateRule{PerIP: 2, Burst: 3} }, []step{
			{api, "198.51.100.1", "", 0, 0}, {api, "198.51.100.1", "", 0, 0}, {api, "198.51.100.1", "", 0, 0},
			{api, "198.51.100.1", "", 0, 500 * time.Millisecond},
			{api, "198.51.100.2", "", 0, 0}, // another address has its own bucket
			{api, "198.51.100.1", "", 500 * time.Millisecond, 0},
			{api, "198.51.100.1", "", 0, 500 * time.Millisecond},
		}},
		{"refused calls do not spend tokens", func(c *RateLimitConfig) { c.API = RateRule{PerIP: 1, Burst: 1} }, []step{
			{api, "198.51.100.1", "", 0, 0}, {api, "198.51.100.1", "", 0, time.Second},
			{api, "198.51.100.1", "", 0, time.Second}, {api, "198.51.100.1", "", time.Second, 0},
		}},
		{"IPv6 addresses of one /64 share a bucket", func(c *RateLimitConfig) { c.API = RateRule{PerIP: 1, Burst: 1} }, []step{
			{api, "2001:db8:1:1::1", "", 0, 0}, {api, "2001:db8:1:1::ffff", "", 0, time.Second},
			{api, "2001:db8:1:2::1", "", 0, 0},
		}},
		{"api off by default", func(c *RateLimitConfig) {}, []step{
			{api, "198.51.100.1", "", 0, 0}, {api, "198.51.100.1", "", 0, 0}, {id, "alice", "", 0, 0}, {id, "alice", "", 0, 0},
		}},
		{"per identity", func(c *RateLimitConfig) { c.API = RateRule{PerIdentity: 1, Burst: 2} }, []step{
			{id, "alice", "", 0, 0}, {id, "alice", "", 0, 0}, {id, "alice", "", 0, time.Second},
			{id, "bob", "", 0, 0}, {id, "", "", 0, 0}, {id, "", "", 0, 0}, {id, "", "", 0, 0}, // anonymous: by address only
			{api, "198.51.100.1", "", 0, 0}, // the address is not limited
		}},
		{"auth attempts per address and per user", func(c *RateLimitConfig) { c.Auth = RateRule{PerIP: 1, PerIdentity: 0.5, Burst: 2} }, []step{
			{auth, "198.51.100.1", "alice", 0, 0}, {auth, "198.51.100.1", "bob", 0, 0},
			{auth, "198.51.100.1", "carol", 0, time.Second},     // the address is out
			{auth, "198.51.100.2", "alice", 0, 0},               // alice has one left
			{auth, "198.51.100.3", "alice", 0, 2 * time.Second}, // then spread attempts on alice are refused
			{auth, "198.51.100.4", "", 0, 0},
			{api, "198.51.100.1", "", 0, 0}, // API calls are counted apart
		}},
		{"disabled", func(c *RateLimitConfig) { c.Enabled = false; c.API = RateRule{PerIP: 1, PerIdentity: 1, Burst: 1} }, []step{
			{api, "198.51.100.1", "", 0, 0}, {api, "198.51.100.1", "", 0, 0}, {id, "a", "", 0, 0}, {id, "a", "", 0, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, clk := newTestLimiter(t, tc.edit)
			h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			for i, s := range tc.steps {
				clk.advance(s.advance)
				var retry time.Duration
				switch s.call {
				case api:
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req(netip.AddrPortFrom(netip.MustParseAddr(s.peer), 4000).String(), "", ""))
					if w.Code == 429 {
						retry, _ = time.ParseDuration(w.Header().Get("Retry-After") + "s")
						if retry == 0 {
							t.Errorf("step %d: 429 without Retry-After", i)
						}
						retry = s.wantRetry // the header is rounded up to seconds
						if got := w.Header().Get("Retry-After"); got != fmt.Sprint(int((s.wantRetry+time.Second-1)/time.Second)) {
							t.Errorf("step %d: Retry-After = %s, want %v rounded up", i, got, s.wantRetry)
						}
					}
				case id:
					retry = retryOf(l.AllowIdentity(s.peer))
				case auth:
					retry = retryOf(l.AllowAuthAttempt(req(s.peer+":4000", "", s.user)))
				}
				if retry != s.wantRetry {
					t.Errorf("step %d: %s from %s (%s) retry after %v, want %v", i, s.call, s.peer, s.user, retry, s.wantRetry)
				}
			}
		})
	}
}

// retryOf returns the RetryAfter of a 429, 0 for nil.
func retryOf(err error) time.Duration {
	if err == nil {
		return 0
	}
	if e, ok := AsError(err); ok && e.Status == 429 {
		return e.RetryAfter
	}
	return -1
}

func TestLoginBackoff(t *testing.T) {
	l, clk := newTestLimiter(t, func(c *RateLimitConfig) {
		c.Auth = RateRule{}
		c.LoginFailures, c.LoginBackoff, c.LoginMaxBackoff = 3, "1s", "8s"
	})
	attacker, other := req("198.51.100.1:4000", "", "alice"), req("198.51.100.2:4000", "", "bob")
	aliceElsewhere := req("198.51.100.3:4000", "", "alice")
	// Each failure, then the wait it imposes.
	for i, want := range []time.Duration{0, 0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		l.AuthFailed(attacker)
		if got := retryOf(l.AllowAuthAttempt(attacker)); got != want {
			t.Errorf("after %d failures: retry after %v, want %v", i+1, got, want)
		}
	}
	if err := l.AllowAuthAttempt(other); err != nil {
		t.Errorf("AllowAuthAttempt(another address, another user) = %v, want nil", err)
	}
	if got := retryOf(l.AllowAuthAttempt(aliceElsewhere)); got != 8*time.Second {
		t.Errorf("AllowAuthAttempt(alice from another address): retry after %v, want 8s (her own back-off)", got)
	}
	clk.advance(3 * time.Second)
	if got := retryOf(l.AllowAuthAttempt(attacker)); got != 5*time.Second {
		t.Errorf("3s into an 8s back-off: retry after %v, want 5s", got)
	}
	clk.advance(5 * time.Second)
	if err := l.AllowAuthAttempt(attacker); err != nil {
		t.Errorf("after the back-off: AllowAuthAttempt = %v, want nil", err)
	}
	l.AuthFailed(attacker) // the count goes on: straight back to the cap
	if got := retryOf(l.AllowAuthAttempt(attacker)); got != 8*time.Second {
		t.Errorf("a failure after the back-off: retry after %v, want 8s", got)
	}
	// alice logs in: her own count ends, the address's goes on.
	l.AuthSucceeded(aliceElsewhere)
	if err := l.AllowAuthAttempt(aliceElsewhere); err != nil {
		t.Errorf("after alice's success: AllowAuthAttempt(alice elsewhere) = %v, want nil", err)
	}
	if got := retryOf(l.AllowAuthAttempt(attacker)); got != 8*time.Second {
		t.Errorf("after alice's success: the failing address retries after %v, want 8s", got)
	}
	clk.advance(8 * time.Second)
	l.AuthFailed(attacker)
	l.AuthFailed(attacker)
	clk.advance(2 * time.Hour) // old failures are forgotten
	l.AuthFailed(attacker)
	if err := l.AllowAuthAttempt(attacker); err != nil {
		t.Errorf("one failure after two forgotten ones: AllowAuthAttempt = %v, want nil", err)
	}

	// Thousands of failures stay at the cap, whatever the durations.
	l, _ = newTestLimiter(t, func(c *RateLimitConfig) {
		c.LoginFailures, c.LoginBackoff, c.LoginMaxBackoff = 1, "1h", "2562047h" // the largest Duration
	})
	for i := range 5000 {
		l.AuthFailed(attacker)
		want := 2562047 * time.Hour
		if i <= 21 { // 2^21h < the cap < 2^22h
			want = time.Hour << i
		}
		if got := retryOf(l.AllowAuthAttempt(attacker)); got != want {
			t.Fatalf("after %d failures with a huge cap: retry after %v, want %v", i+1, got, want)
		}
	}

	// Behind a trusted proxy, the client behind it backs off, not the proxy.
	l, _ = newTestLimiter(t, func(c *RateLimitConfig) { c.TrustedProxies = []string{"10.0.0.1"}; c.LoginFailures = 1 })
	l.AuthFailed(req("10.0.0.1:4000", "198.51.100.1", ""))
	if err := l.AllowAuthAttempt(req("10.0.0.1:4000", "198.51.100.2", "")); err != nil {
		t.Errorf("another client through the proxy: AllowAuthAttempt = %v, want nil", err)
	}
	if err := l.AllowAuthAttempt(req("10.0.0.1:4000", "198.51.100.1", "")); retryOf(err) != time.Second {
		t.Errorf("the failing client through the proxy: AllowAuthAttempt = %v, want a 1s back-off", err)
	}
}

func TestRateLimiterMemoryBounded(t *testing.T) {
	l, clk := newTestLimiter(t, func(c *RateLimitConfig) { c.MaxClients = 100; c.API = RateRule{PerIP: 1, Burst: 1} })
	locked := req("198.51.100.1:4000", "", "")
	for range 5 {
		l.AuthFailed(locked)
	}
	for i := range 10000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.AllowAuthAttempt(req(netip.AddrPortFrom(addr, 1).String(), "", fmt.Sprint("user", i)))
		if n := len(l.clients); n > 100 {
			t.Fatalf("after %d clients: %d entries, want at most 100", i, n)
		}
	}
	if retryOf(l.AllowAuthAttempt(locked)) <= 0 {
		t.Error("the address backing off was forgotten while the table was full")
	}
	clk.advance(2 * time.Hour)
	l.AllowAuthAttempt(req("198.51.100.2:4000", "", ""))
	if n := len(l.clients); n > 1 {
		t.Errorf("after two idle hours: %d entries, want the idle ones swept", n)
	}
}

func TestRateLimitMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	l, _ := newTestLimiter(t, func(c *RateLimitConfig) { c.API = RateRule{PerIP: 1, PerIdentity: 1, Burst: 1}; c.LoginFailures = 1 })
	if err := l.Register(reg); err != nil {
		t.Fatal(err)
	}
	h := l.Middleware(http.NotFoundHandler())
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), req("198.51.100.1:1", "", ""))
		l.AllowIdentity("alice")
	}
	l.AuthFailed(req("198.51.100.1:1", "", ""))
	l.AllowAuthAttempt(req("198.51.100.1:1", "", ""))
	for _, c := range []struct {
		limit, by string
		want      float64
	}{{"api", "ip", 2}, {"api", "identity", 2}, {"login_backoff", "ip", 1}, {"auth", "ip", 0}} {
		var m dto.Metric
		l.limited.WithLabelValues(c.limit, c.by).Write(&m)
		if got := m.GetCounter().GetValue(); got != c.want {
			t.Errorf("nora_rate_limited_total{limit=%s,by=%s} = %v, want %v", c.limit, c.by, got, c.want)
		}
	}
}

func TestNilRateLimiter(t *testing.T) {
	var l *RateLimiter
	r := req("198.51.100.1:1", "", "alice")
	if l.AllowAuthAttempt(r) != nil || l.AllowIdentity("alice") != nil {
		t.Error("a nil RateLimiter refused a request")
	}
	l.AuthFailed(r)
	l.AuthSucceeded(r)
	next := http.NotFoundHandler()
	if h := l.Middleware(next); fmt.Sprint(h) != fmt.Sprint(next) {
		t.Error("a nil RateLimiter's Middleware wraps the handler")
	}
}

func BenchmarkRateLimiterAllow(b *testing.B) {
	cfg := DefaultRateLimitConfig()
	cfg.API = RateRule{PerIP: 1e9, Burst: 1e9}
	h := NewRateLimiter(cfg).Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := req("198.51.100.1:1", "", "")
	w := httptest.NewRecorder()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// TestRateLimiterConcurrent is for the race detector: every method at once
// on a small table, so sweeps run while buckets are used.
func TestRateLimiterConcurrent(t *testing.T) {
	l := NewRateLimiter(func() RateLimitConfig {
		c := DefaultRateLimitConfig()
		c.MaxClients, c.API = 16, RateRule{PerIP: 100, PerIdentity: 100, Burst: 10}
		return c
	}())
	h := l.Middleware(http.NotFoundHandler())
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				r := req(fmt.Sprintf("198.51.100.%d:1", (g*500+i)%64), "", fmt.Sprint("u", i%20))
				h.ServeHTTP(httptest.NewRecorder(), r)
				l.AllowIdentity(fmt.Sprint("u", i%20))
				l.AllowAuthAttempt(r)
				if i%3 == 0 {
					l.AuthFailed(r)
				} else {
					l.AuthSucceeded(r)
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	if n := len(l.clients); n > 16 {
		t.Errorf("%d entries, want at most 16", n)
	}
}

// TestReconfiguredRemembers: a reload keeps failed logins and back-offs
// (it must not free a password guesser), and spent bursts while the rates
// stay the same; a new rate starts its buckets again.
func TestReconfiguredRemembers(t *testing.T) {
	edit := func(c *RateLimitConfig) {
		c.LoginFailures, c.LoginBackoff, c.LoginMaxBackoff = 2, "1m", "1h"
		c.API = RateRule{PerIdentity: 1, Burst: 2}
	}
	l, _ := newTestLimiter(t, edit)
	guesser := req("198.51.100.1:4000", "", "alice")
	l.AuthFailed(guesser)
	l.AuthFailed(guesser)
	for range 2 {
		if err := l.AllowIdentity("ci"); err != nil {
			t.Fatalf("AllowIdentity(ci) within the burst = %v", err)
		}
	}
	if l.AllowIdentity("ci") == nil {
		t.Fatal("AllowIdentity(ci) past the burst = nil, want refused")
	}

	cfg := l.cfg
	cfg.MaxClients++ // a change that leaves the rates alone
	same := l.Reconfigured(cfg)
	if got := retryOf(same.AllowAuthAttempt(guesser)); got != time.Minute {
		t.Errorf("after a reload: the guesser retries after %v, want 1m (still backed off)", got)
	}
	if same.AllowIdentity("ci") == nil {
		t.Error("after a reload with the same rates: AllowIdentity(ci) = nil, want its spent burst remembered")
	}

	cfg.API.PerIdentity = 100
	faster := same.Reconfigured(cfg)
	if err := faster.AllowIdentity("ci"); err != nil {
		t.Errorf("after a reload with a new rate: AllowIdentity(ci) = %v, want a new bucket", err)
	}
	if got := retryOf(faster.AllowAuthAttempt(guesser)); got != time.Minute {
		t.Errorf("after a reload with a new rate: the guesser retries after %v, want 1m", got)
	}
}
