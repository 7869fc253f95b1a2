package auth

import (
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// refreshWith posts a refresh grant for token to s and returns the status.
func refreshWith(s *Service, token string) int {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}, "scope": {"repository:team/app:pull"}}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/auth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.TokenHandler().ServeHTTP(w, r)
	return w.Code
}

// TestRefreshTokenEndsWithCredentials: a refresh token stops working when
// its user's password, groups or rules change or the user is removed, on
// a service restarted with the same signing key; it outlives a restart
// with the same configuration and changes that aren't the user's.
func TestRefreshTokenEndsWithCredentials(t *testing.T) {
	dir := t.TempDir()
	base := newService(t).cfg
	start := func(edit func(*Config)) *Service {
		cfg := base
		cfg.Users = slices.Clone(base.Users)
		cfg.Rules = slices.Clone(base.Rules)
		edit(&cfg)
		s, err := New(cfg, dir, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	_, refresh := getTokenOffline(t, start(func(*Config) {}), "alice", "alice-pw")
	for _, c := range []struct {
		name string
		edit func(*Config)
		want int
	}{
		{"unchanged", func(*Config) {}, 200},
		{"other user's password changed", func(c *Config) { c.Users[1].Password = hash(t, "new") }, 200},
		{"rules reordered", func(c *Config) { slices.Reverse(c.Rules) }, 200},
		{"password changed", func(c *Config) { c.Users[0].Password = hash(t, "alice-new") }, 401},
		{"user removed", func(c *Config) { c.Users = c.Users[1:] }, 401},
		{"user removed and added again", func(c *Config) { c.Users[0].Password = hash(t, "alice-pw") }, 401},
		{"rights changed", func(c *Config) {
			c.Rules[0].Permissions = []string{"pull:team/**"}
		}, 401},
		{"a rule added", func(c *Config) {
			c.Rules = append(c.Rules, RuleConfig{Users: []string{"alice"}, Permissions: []string{"!push:team/app"}})
		}, 401},
		{"groups changed", func(c *Config) { c.Users[0].Groups = nil }, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := refreshWith(start(c.edit), refresh); got != c.want {
				t.Errorf("refresh grant after %s = %d, want %d", c.name, got, c.want)
			}
		})
	}
	// A refresh token without a generation (as issued before) is refused.
	s := start(func(*Config) {})
	c, err := s.signer.verify(refresh, "nora", "nora/refresh")
	if err != nil {
		t.Fatal(err)
	}
	c.Generation = ""
	old, _ := s.signer.sign(*c)
	if got := refreshWith(s, old); got != 401 {
		t.Errorf("refresh grant with no generation = %d, want 401", got)
	}
}
