package auth

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nora-registry/nora/storage"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// RateLimitConfig is the [rate_limit] section: request rates per client
// address and per identity, separately for API calls and for credential
// checks, and an exponential back-off for addresses, and for user names,
// whose logins keep failing.
type RateLimitConfig struct {
	// Enabled turns every limit on or off.
	Enabled bool `toml:"enabled"`
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For header names the client. From anyone else the
	// header is ignored: a client could claim any address.
	TrustedProxies []string `toml:"trusted_proxies"`
	// MaxClients bounds the number of addresses and identities tracked at
	// once; idle ones are forgotten first.
	MaxClients int `toml:"max_clients"`
	// API limits every request.
	API RateRule `toml:"api"`
	// Auth limits credential checks: passwords, robot tokens and ID
	// tokens at the token endpoint and as Basic credentials.
	Auth RateRule `toml:"auth"`
	// LoginFailures failed logins from one address, or for one user name
	// from any address, start the back-off: logins from that address, or
	// as that user, are refused for LoginBackoff, doubled at every further
	// failure up to LoginMaxBackoff. A user's successful password login
	// resets that user's count; an address's count is forgotten only
	// after a while without failures (an hour, or twice
	// LoginMaxBackoff).
	LoginFailures   int    `toml:"login_failures"`
	LoginBackoff    string `toml:"login_backoff"`
	LoginMaxBackoff string `toml:"login_max_backoff"`
}

// RateRule is a pair of token-bucket limits, in requests per second (0: no
// limit), sharing one burst size.
type RateRule struct {
	PerIP       float64 `toml:"per_ip"`
	PerIdentity float64 `toml:"per_identity"`
	// Burst is how many requests may come at once before the rate
	// applies.
	Burst int `toml:"burst"`
}

// DefaultRateLimitConfig returns the defaults of the keys a [rate_limit]
// section leaves out. API calls are not limited by default: the right rate
// depends on how many CI jobs or nodes share an address. Credential checks
// are.
func DefaultRateLimitConfig() RateLimitConfig {
	return RateLimitConfig{
		Enabled:         true,
		MaxClients:      65536,
		API:             RateRule{Burst: 200},
		Auth:            RateRule{PerIP: 5, PerIdentity: 2, Burst: 20},
		LoginFailures:   5,
		LoginBackoff:    "1s",
		LoginMaxBackoff: "15m",
	}
}

// Validate reports the first invalid value, naming its key.
func (c RateLimitConfig) Validate() error {
	for i, p := range c.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			return fmt.Errorf("rate_limit.trusted_proxies[%d]: %q is not an address or CIDR", i, p)
		}
	}
	if c.MaxClients < 1 {
		return fmt.Errorf("rate_limit.max_clients: must be at least 1, got %d", c.MaxClients)
	}
	for key, r := range map[string]RateRule{"rate_limit.api": c.API, "rate_limit.auth": c.Auth} {
		switch {
		case r.PerIP < 0 || math.IsNaN(r.PerIP) || math.IsInf(r.PerIP, 0):
			return fmt.Errorf("%s.per_ip: want requests per second, 0 for no limit, got %v", key, r.PerIP)
		case r.PerIdentity < 0 || math.IsNaN(r.PerIdentity) || math.IsInf(r.PerIdentity, 0):
			return fmt.Errorf("%s.per_identity: want requests per second, 0 for no limit, got %v", key, r.PerIdentity)
		case r.Burst < 1 && (r.PerIP > 0 || r.PerIdentity > 0):
			return fmt.Errorf("%s.burst: must be at least 1 when a rate is set, got %d", key, r.Burst)
		}
	}
	if c.LoginFailures < 0 {
		return fmt.Errorf("rate_limit.login_failures: must not be negative (0 turns the back-off off), got %d", c.LoginFailures)
	}
	for key, v := range map[string]string{"rate_limit.login_backoff": c.LoginBackoff, "rate_limit.login_max_backoff": c.LoginMaxBackoff} {
		if d, err := storage.ParseDuration(v); err != nil || d <= 0 {
			return fmt.Errorf("%s: %q is not a positive duration", key, v)
		}
	}
	if b, m := dur(c.LoginBackoff), dur(c.LoginMaxBackoff); m < b {
		return fmt.Errorf("rate_limit.login_max_backoff: %s is shorter than login_backoff %s", m, b)
	}
	return nil
}

func dur(s string) time.Duration { d, _ := storage.ParseDuration(s); return d }

// parsePrefix reads "10.0.0.0/8" or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// RateLimiter enforces [rate_limit]. A nil or disabled RateLimiter allows
// everything. Its methods are safe for concurrent use.
type RateLimiter struct {
	cfg     RateLimitConfig
	proxies []netip.Prefix
	backoff time.Duration
	maxBack time.Duration
	forget  time.Duration    // failed logins are forgotten after this long without one
	now     func() time.Time // tests move the clock

	limited *prometheus.CounterVec

	mu        sync.Mutex
	clients   map[string]*client
	lastSweep time.Time
}

// client is what is remembered of one address or identity.
type client struct {
	lim  *rate.Limiter // nil: this key has no rate
	seen time.Time

	failures    int // consecutive failed logins
	lastFailure time.Time
	lockedUntil time.Time
}

// Rate limiter bookkeeping: keys idle this long are forgotten at the next
// sweep, and failed logins are forgotten after failureMemory (or twice
// login_max_backoff) without one.
const (
	idleAfter     = 10 * time.Minute
	sweepEvery    = time.Minute
	failureMemory = time.Hour
	maxKeyLen     = 256
)

// NewRateLimiter returns the limiter cfg describes; cfg must be valid.
func NewRateLimiter(cfg RateLimitConfig) *RateLimiter {
	l := &RateLimiter{
		cfg:     cfg,
		backoff: dur(cfg.LoginBackoff),
		maxBack: dur(cfg.LoginMaxBackoff),
		now:     time.Now,
		clients: map[string]*client{},
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nora_rate_limited_total",
			Help: "Requests refused with 429, by what was limited (api, auth, login_backoff) and by what key (ip, identity).",
		}, []string{"limit", "by"}),
	}
	l.forget = time.Duration(math.MaxInt64)
	if l.maxBack < l.forget/2 {
		l.forget = max(failureMemory, 2*l.maxBack)
	}
	for _, p := range cfg.TrustedProxies {
		if pr, err := parsePrefix(p); err == nil {
			l.proxies = append(l.proxies, pr)
		}
	}
	return l
}

// Reconfigured returns a limiter for cfg, which must be valid, that counts
// into l's metric. It starts with no client known: rates, bursts and
// login back-offs start again under the new settings.
func (l *RateLimiter) Reconfigured(cfg RateLimitConfig) *RateLimiter {
	n := NewRateLimiter(cfg)
	n.limited = l.limited
	return n
}

// Register registers the limiter's metric, nora_rate_limited_total{limit,by},
// with reg.
func (l *RateLimiter) Register(reg prometheus.Registerer) error {
	return reg.Register(l.limited)
}

func (l *RateLimiter) on() bool { return l != nil && l.cfg.Enabled }

// Middleware refuses API calls beyond the per-address rate with 429
// TOOMANYREQUESTS and Retry-After, in the registry's error format.
func (l *RateLimiter) Middleware(next http.Handler) http.Handler {
	if !l.on() || l.cfg.API.PerIP == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait := l.take("api", "ip", ipKey(l.ClientIP(r)), l.cfg.API.PerIP, l.cfg.API.Burst); wait > 0 {
			WriteRateLimited(w, r, tooMany("too many requests from this address", wait))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// AllowIdentity counts one API call by the named identity: an *Error with
// status 429 when it is over its rate. Anonymous callers ("") are limited
// by address only.
func (l *RateLimiter) AllowIdentity(name string) error {
	if !l.on() || name == "" || l.cfg.API.PerIdentity == 0 {
		return nil
	}
	if wait := l.take("api", "identity", "id:"+clip(name), l.cfg.API.PerIdentity, l.cfg.API.Burst); wait > 0 {
		return tooMany("too many requests by "+name, wait)
	}
	return nil
}

// Authorizer returns a, counting every authenticated request against its
// identity's API rate (once per request, in Authenticate: Authorize also
// runs per repository when the catalog is filtered). Anonymous callers are
// limited by address only.
func (l *RateLimiter) Authorizer(a Authorizer) Authorizer {
	if !l.on() || l.cfg.API.PerIdentity == 0 {
		return a
	}
	return identityLimited{a, l}
}

type identityLimited struct {
	Authorizer
	l *RateLimiter
}

func (a identityLimited) Authenticate(r *http.Request) (*Identity, error) {
	id, err := a.Authorizer.Authenticate(r)
	if err != nil || id == nil || id.Kind == KindAnonymous {
		return id, err
	}
	if err := a.l.AllowIdentity(id.Name); err != nil {
		return nil, err
	}
	return id, nil
}

// take spends one token of key's bucket, or returns how long until one is
// available, counting the refusal by limit and by.
func (l *RateLimiter) take(limit, by, key string, perSecond float64, burst int) time.Duration {
	now := l.now()
	l.mu.Lock()
	c := l.get(key, now)
	if c.lim == nil {
		c.lim = rate.NewLimiter(rate.Limit(perSecond), burst)
	}
	lim := c.lim
	l.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if wait := res.DelayFrom(now); wait > 0 {
		res.CancelAt(now)
		l.limited.WithLabelValues(limit, by).Inc()
		return wait
	}
	return 0
}

// get returns key's entry, made if needed. l.mu is held.
func (l *RateLimiter) get(key string, now time.Time) *client {
	c := l.clients[key]
	if c == nil {
		if len(l.clients) >= l.cfg.MaxClients || now.Sub(l.lastSweep) > sweepEvery {
			l.sweep(now)
		}
		c = &client{}
		l.clients[key] = c
	}
	c.seen = now
	return c
}

// sweep forgets idle entries; if the table is still full it forgets
// entries at random, sparing addresses that are backing off while it can.
// l.mu is held.
func (l *RateLimiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, c := range l.clients {
		if now.Sub(c.seen) > idleAfter && !now.Before(c.lockedUntil) && now.Sub(c.lastFailure) > l.forget {
			delete(l.clients, k)
		}
	}
	target := l.cfg.MaxClients - l.cfg.MaxClients/8 - 1
	for spare := true; len(l.clients) > target; spare = false {
		for k, c := range l.clients {
			if len(l.clients) <= target {
				break
			}
			if !spare || !now.Before(c.lockedUntil) {
				delete(l.clients, k)
			}
		}
	}
}

// ClientIP returns the address r comes from: the direct peer, or, when
// the peer is a trusted proxy, the right-most address in X-Forwarded-For
// that is not a trusted proxy.
func (l *RateLimiter) ClientIP(r *http.Request) netip.Addr {
	peer := remoteAddr(r.RemoteAddr)
	if !l.trusted(peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a garbled hop: trust nothing to its left
		}
		client = a.Unmap()
		if !l.trusted(client) {
			break
		}
	}
	return client
}

func (l *RateLimiter) trusted(a netip.Addr) bool {
	for _, p := range l.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(s string) netip.Addr {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, _ := netip.ParseAddr(host)
	return a.WithZone("").Unmap()
}

// ipKey names an address's bucket. IPv6 clients are grouped by /64, the
// block a single host is usually given, so one host can't spread over
// addresses.
func ipKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func clip(s string) string {
	if len(s) > maxKeyLen {
		return s[:maxKeyLen]
	}
	return s
}

func tooMany(msg string, wait time.Duration) *Error {
	secs := int((wait + time.Second - 1) / time.Second)
	return &Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
		Message: msg + "; retry after " + strconv.Itoa(secs) + "s"}
}

// WriteRateLimited writes a 429 in the registry's error format
// (TOOMANYREQUESTS) with its Retry-After header, for handlers outside the
// registry.
func WriteRateLimited(w http.ResponseWriter, r *http.Request, err *Error) {
	for k, v := range err.Header() {
		w.Header()[k] = v
	}
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": "TOOMANYREQUESTS", "message": err.Message}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusTooManyRequests)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
