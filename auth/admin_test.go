package auth

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestAdminPermission(t *testing.T) {
	for _, c := range []struct {
		rules []string
		want  bool
	}{
		{[]string{"admin:*"}, true},
		{[]string{"admin:anything/**", "pull:**"}, true}, // the glob is ignored
		{[]string{"*:**"}, false},                        // `*` means pull, push and delete only
		{[]string{"admin:*", "!admin:*"}, false},         // deny wins
		{nil, false},
	} {
		p, err := ParsePermissions(c.rules)
		if err != nil {
			t.Fatalf("ParsePermissions(%q) = %v", c.rules, err)
		}
		if got := p.IsAdmin(); got != c.want {
			t.Errorf("%q: IsAdmin = %v, want %v", c.rules, got, c.want)
		}
		if p.Allows("x", ActionAdmin) {
			t.Errorf("%q allows admin on a repository", c.rules)
		}
	}
	p, _ := ParsePermissions([]string{"admin:*"})
	if p.Allows("x", ActionPull) {
		t.Error("admin:* allows pull")
	}
}

func TestAdminIdentities(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Realm = "https://registry.example"
	cfg.Users = []UserConfig{{Name: "root", Password: hash(t, "root-pw")}, {Name: "bob", Password: hash(t, "bob-pw")}}
	cfg.Anonymous = []string{"pull:public/**"}
	cfg.Rules = []RuleConfig{{Users: []string{"root"}, Permissions: []string{"admin:*", "*:**"}}}
	s, err := New(cfg, t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth("root", "root-pw")
	root, err := s.Authenticate(r)
	if err != nil || !IsAdmin(root.Grants) {
		t.Fatalf("root by Basic: %v, admin %v", err, err == nil && IsAdmin(root.Grants))
	}
	r.SetBasicAuth("bob", "bob-pw")
	if bob, err := s.Authenticate(r); err != nil || IsAdmin(bob.Grants) {
		t.Errorf("bob by Basic: %v, admin %v", err, err == nil && IsAdmin(bob.Grants))
	}
	if anon, _ := s.Authenticate(httptest.NewRequest("GET", "/v2/", nil)); IsAdmin(anon.Grants) {
		t.Error("anonymous is admin")
	}
	// A token never carries admin, even root's with every scope.
	code, resp := getToken(t, s, "root", "root-pw", "repository:x:*", "registry:catalog:*")
	tok, err := s.Authenticate(bearer(resp.Token))
	if code != 200 || err != nil || IsAdmin(tok.Grants) || IsAdmin(tok.CatalogGrants()) {
		t.Errorf("root's token: %d %v, admin %v", code, err, err == nil && IsAdmin(tok.Grants))
	}
	if id, _, ok := s.Subject(t.Context(), KindUser, "root"); !ok || !IsAdmin(id.Grants) {
		t.Error("root's session subject is not admin")
	}
}

func TestAdminNotForAnonymous(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Anonymous = []string{"pull:**", "admin:*"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "auth.anonymous") {
		t.Errorf("Validate = %v, want an auth.anonymous error", err)
	}
}
