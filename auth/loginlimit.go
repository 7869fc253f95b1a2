package auth

// The login back-off: failed credential checks are counted per client
// address and per user name, and either backs off for LoginBackoff,
// doubled at each further failure up to LoginMaxBackoff.

import (
	"net/http"
	"time"
)

// AllowAuthAttempt counts one credential check from r's client, and for
// the user name of its Basic credentials: an *Error with status 429 while
// the address or the user backs off after failed logins or when either is
// over its rate. Call it before checks that cost (bcrypt, ID token
// verification), not for cached ones, and report the outcome with
// AuthFailed or AuthSucceeded.
func (l *RateLimiter) AllowAuthAttempt(r *http.Request) error {
	name, _, _ := r.BasicAuth()
	return l.allowLogin(r, name, name)
}

// allowLogin is AllowAuthAttempt for a user name that may come from
// elsewhere than Basic credentials (the password grant's form), so every
// way to send a password shares the user's limits. name is counted
// against the per-identity rate; user, the name whose password is
// checked, must also not be backing off. They differ for credentials that
// work under any name (robot tokens, ID tokens): user is then "", so no
// one can block them by failing logins under the name CI jobs use.
func (l *RateLimiter) allowLogin(r *http.Request, name, user string) error {
	if !l.on() {
		return nil
	}
	ip := ipKey(l.ClientIP(r))
	if wait := l.lockedFor("fail:" + ip); wait > 0 {
		l.limited.WithLabelValues("login_backoff", "ip").Inc()
		return tooMany("too many failed logins from this address", wait)
	}
	if wait := l.lockedFor(userFailKey(user)); user != "" && wait > 0 {
		l.limited.WithLabelValues("login_backoff", "identity").Inc()
		return tooMany("too many failed logins for this user", wait)
	}
	if l.cfg.Auth.PerIP > 0 {
		if wait := l.take("auth", "ip", "auth:"+ip, l.cfg.Auth.PerIP, l.cfg.Auth.Burst); wait > 0 {
			return tooMany("too many login attempts from this address", wait)
		}
	}
	if name != "" && l.cfg.Auth.PerIdentity > 0 {
		if wait := l.take("auth", "identity", "auth-id:"+clip(name), l.cfg.Auth.PerIdentity, l.cfg.Auth.Burst); wait > 0 {
			return tooMany("too many login attempts for this user", wait)
		}
	}
	return nil
}

// userFailKey names the failed-login count of user name.
func userFailKey(name string) string { return "fail-user:" + clip(name) }

// AuthFailed records a failed login from r's client, for its address and
// for the user name of its Basic credentials.
func (l *RateLimiter) AuthFailed(r *http.Request) {
	name, _, _ := r.BasicAuth()
	l.loginFailed(r, name)
}

// loginFailed records a failed login from r's client claiming user name
// ("" for none). From the LoginFailures-th failure in a row of the address,
// or of the user from any address, that one backs off for LoginBackoff,
// doubled at each further failure up to LoginMaxBackoff.
func (l *RateLimiter) loginFailed(r *http.Request, name string) {
	if !l.on() || l.cfg.LoginFailures == 0 {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.countFailure("fail:"+ipKey(l.ClientIP(r)), now)
	if name != "" {
		l.countFailure(userFailKey(name), now)
	}
}

// countFailure counts one failed login of key. l.mu is held.
func (l *RateLimiter) countFailure(key string, now time.Time) {
	c := l.get(key, now)
	if now.Sub(c.lastFailure) > l.forget {
		c.failures = 0
	}
	c.failures++
	c.lastFailure = now
	if n := c.failures - l.cfg.LoginFailures; n >= 0 {
		wait := l.backoff
		for ; n > 0 && wait < l.maxBack; n-- {
			if wait > l.maxBack/2 {
				wait = l.maxBack // doubling would pass the cap, or overflow
				break
			}
			wait *= 2
		}
		c.lockedUntil = now.Add(min(wait, l.maxBack))
	}
}

// AuthSucceeded records that the user of r's Basic credentials logged in
// with their password, ending that user's back-off.
func (l *RateLimiter) AuthSucceeded(r *http.Request) {
	name, _, _ := r.BasicAuth()
	l.loginSucceeded(name)
}

// loginSucceeded ends the back-off of user name, whose password was just
// checked. The address's count goes on: anyone with an account could
// otherwise clear it between guesses at someone else's password; it is
// forgotten only after a while without failures.
func (l *RateLimiter) loginSucceeded(name string) {
	if !l.on() || name == "" {
		return
	}
	l.mu.Lock()
	delete(l.clients, userFailKey(name))
	l.mu.Unlock()
}

// lockedFor returns how long the failed-login count key must still wait
// to log in.
func (l *RateLimiter) lockedFor(key string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.clients[key]; c != nil && now.Before(c.lockedUntil) {
		return c.lockedUntil.Sub(now)
	}
	return 0
}
