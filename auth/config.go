package auth

import (
	"errors"
	"fmt"

	"github.com/nora-registry/nora/storage"
)

// Config is the [auth] section of nora.toml. Without it the registry is
// open to everyone.
type Config struct {
	// Realm is the registry's public URL; the token endpoint is
	// Realm + "/auth/token". Empty: derived from each request's Host.
	Realm string `toml:"realm"`
	// Service names the registry in tokens (their issuer and audience).
	Service string `toml:"service"`
	// TokenLifetime is how long issued tokens stay valid, e.g. "5m".
	TokenLifetime string `toml:"token_lifetime"`
	// RefreshLifetime is how long refresh tokens stay valid, e.g. "720h".
	RefreshLifetime string `toml:"refresh_lifetime"`
	// Users log in with a password checked against a bcrypt hash
	// (`registry user hash` makes one).
	Users []UserConfig `toml:"users"`
	// Anonymous lists what callers without credentials may do, e.g.
	// ["pull:public/**"]. Empty: nothing. Every identity may do it too.
	Anonymous []string `toml:"anonymous"`
	// Htpasswd is an htpasswd file of more users, "name:bcrypt-hash" per
	// line (htpasswd -B makes them), read at start and at each reload.
	Htpasswd string `toml:"htpasswd"`
	// Groups lists the members of each group, e.g. team-a = ["alice"],
	// in addition to the groups named on [[auth.users]] entries.
	Groups map[string][]string `toml:"groups"`
	// Rules bind permissions to users, groups and robot tokens.
	Rules []RuleConfig `toml:"rules"`
	// OIDC lists the issuers whose ID tokens CI jobs exchange for
	// registry tokens.
	OIDC []OIDCConfig `toml:"oidc"`
}

// UserConfig is one [[auth.users]] entry.
type UserConfig struct {
	Name     string   `toml:"name"`
	Password string   `toml:"password"` // bcrypt hash
	Groups   []string `toml:"groups"`
}

// RuleConfig is one [[auth.rules]] entry: its permissions apply to every
// listed user, every member of a listed group and every listed robot token
// (in addition to the permissions the robot was created with).
type RuleConfig struct {
	Users       []string `toml:"users"`
	Groups      []string `toml:"groups"`
	Robots      []string `toml:"robots"`
	Permissions []string `toml:"permissions"`
}

// DefaultConfig returns the defaults of the keys an [auth] section leaves
// out.
func DefaultConfig() Config {
	return Config{Service: "nora", TokenLifetime: "5m", RefreshLifetime: "720h"}
}

// WithDefaults returns c with the defaults in the keys it leaves empty.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.Service == "" {
		c.Service = d.Service
	}
	if c.TokenLifetime == "" {
		c.TokenLifetime = d.TokenLifetime
	}
	if c.RefreshLifetime == "" {
		c.RefreshLifetime = d.RefreshLifetime
	}
	return c
}

// Validate reports the invalid values, naming their keys: every one, and
// the first of each OIDC issuer.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Service == "" {
		bad("auth.service: must be set")
	}
	for _, d := range []struct{ key, v string }{{"auth.token_lifetime", c.TokenLifetime}, {"auth.refresh_lifetime", c.RefreshLifetime}} {
		if v, err := storage.ParseDuration(d.v); err != nil || v <= 0 {
			bad("%s: %q is not a positive duration", d.key, d.v)
		}
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		if u.Name == "" || seen[u.Name] {
			bad("auth.users[%d].name: empty or repeated %q", i, u.Name)
		}
		seen[u.Name] = true
		if len(u.Password) < 59 || u.Password[0] != '$' {
			bad("auth.users[%d].password: want a bcrypt hash (registry user hash)", i)
		}
	}
	if _, err := c.allUsers(); err != nil {
		errs = append(errs, err)
	}
	if anon, err := ParsePermissions(c.Anonymous); err != nil {
		bad("auth.anonymous: %w", err)
	} else if anon.IsAdmin() {
		bad("auth.anonymous: admin is for users and robots, not anonymous callers")
	}
	for i, r := range c.Rules {
		if _, err := ParsePermissions(r.Permissions); err != nil {
			bad("auth.rules[%d].permissions: %w", i, err)
		}
	}
	for i, o := range c.OIDC {
		if err := o.validate(fmt.Sprintf("auth.oidc[%d]", i)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
