package auth

import (
	"fmt"
	"strings"
	"testing"
)

func TestPermissionsAllows(t *testing.T) {
	type check struct {
		repo   string
		action Action
		want   bool
	}
	tests := []struct {
		name   string
		rules  []string
		checks []check
	}{
		{"no rules deny everything", nil, []check{{"a", ActionPull, false}, {"", ActionPull, false}}},
		{"star stays in one segment", []string{"pull:*"}, []check{
			{"app", ActionPull, true}, {"team/app", ActionPull, false}, {"app", ActionPush, false}}},
		{"double star crosses segments", []string{"pull:**"}, []check{
			{"app", ActionPull, true}, {"team/app", ActionPull, true}, {"a/b/c/d", ActionPull, true}}},
		{"prefix look-alikes", []string{"push:team/*"}, []check{
			{"team/x", ActionPush, true}, {"team-evil/x", ActionPush, false}, {"teamx", ActionPush, false},
			{"team/x/y", ActionPush, false}, {"team", ActionPush, false}, {"evil/team/x", ActionPush, false}}},
		{"subtree", []string{"push:team/**"}, []check{
			{"team/x", ActionPush, true}, {"team/x/y/z", ActionPush, true}, {"teamx/y", ActionPush, false},
			{"team", ActionPush, true}, {"team-evil/x", ActionPush, false}, {"teamx", ActionPush, false}}},
		{"a subtree deny covers its root", []string{"*:team-a/**", "!delete:team-a/prod/**"}, []check{
			{"team-a/prod", ActionDelete, false}, {"team-a/prod/app", ActionDelete, false}, {"team-a/prod", ActionPull, true},
			{"team-a/prodx", ActionDelete, true}, {"team-a/prod-2", ActionDelete, true}, {"team-a", ActionDelete, true}}},
		{"a subtree root keeps its globs", []string{"pull:team-*/**"}, []check{
			{"team-a", ActionPull, true}, {"team-a/x", ActionPull, true}, {"team", ActionPull, false}, {"other", ActionPull, false}}},
		{"a trailing star is no subtree", []string{"pull:team/*"}, []check{{"team", ActionPull, false}}},
		{"only real actions", []string{"*:**"}, []check{
			{"x", Action("admin"), false}, {"x", Action("**"), false}, {"x", ActionAll, false}, {"x", Action(""), false}}},
		{"globstar prefix matches any depth", []string{"delete:**/dev-*"}, []check{
			{"dev-1", ActionDelete, true}, {"a/dev-1", ActionDelete, true}, {"a/b/dev-1", ActionDelete, true},
			{"a/dev-1/x", ActionDelete, false}, {"a/prod-1", ActionDelete, false}}},
		{"segment star inside a name", []string{"delete:team-a/dev-*"}, []check{
			{"team-a/dev-x", ActionDelete, true}, {"team-a/dev-x/y", ActionDelete, false}, {"team-a/prod", ActionDelete, false}}},
		{"action star", []string{"*:team/**"}, []check{
			{"team/a", ActionPull, true}, {"team/a", ActionPush, true}, {"team/a", ActionDelete, true}, {"other/a", ActionPull, false}}},
		{"deny wins whatever the order", []string{"!push:prod/**", "*:**"}, []check{
			{"prod/app", ActionPush, false}, {"prod/app", ActionPull, true}, {"dev/app", ActionPush, true}}},
		{"deny after allow", []string{"*:**", "!push:prod/**"}, []check{{"prod/app", ActionPush, false}, {"prod/app", ActionDelete, true}}},
		{"deny everything of an action", []string{"pull:**", "push:**", "!*:secret/**"}, []check{
			{"secret/x", ActionPull, false}, {"secret/x", ActionPush, false}, {"public/x", ActionPull, true}}},
		{"case matters", []string{"pull:Team/**"}, []check{{"team/x", ActionPull, false}}},
		{"exact name", []string{"pull:library/alpine"}, []check{
			{"library/alpine", ActionPull, true}, {"library/alpine2", ActionPull, false}, {"library/alpine/x", ActionPull, false}}},
		{"question mark stays in a segment", []string{"pull:a?b"}, []check{{"axb", ActionPull, true}, {"a/b", ActionPull, false}}},
		{"globstar in the middle matches zero or more segments", []string{"pull:a/**/b"}, []check{
			{"a/b", ActionPull, true}, {"a/x/b", ActionPull, true}, {"a/x/y/b", ActionPull, true},
			{"a/xb", ActionPull, false}, {"ab", ActionPull, false}, {"a/b/c", ActionPull, false}}},
		{"two stars as a prefix stay a prefix", []string{"push:team**"}, []check{
			{"team", ActionPush, true}, {"team-evil/x", ActionPush, true}, {"x/team", ActionPush, false}}},
		{"star for one segment, both actions", []string{"*:*"}, []check{
			{"a", ActionDelete, true}, {"a/b", ActionPull, false}}},
		{"deny everything", []string{"*:**", "!*:**"}, []check{{"a", ActionPull, false}, {"a/b", ActionDelete, false}}},
		{"a deny of one action leaves the others", []string{"*:prod/**", "!delete:prod/**"}, []check{
			{"prod/app", ActionDelete, false}, {"prod/app", ActionPull, true}, {"prod/app", ActionPush, true}}},
		{"deny of a subtree leaves look-alikes", []string{"pull:**", "!pull:secret/**"}, []check{
			{"secret/x", ActionPull, false}, {"secret", ActionPull, false}, {"secret-not/x", ActionPull, true}, {"secretx", ActionPull, true}, {"a/secret/x", ActionPull, true}}},
		{"deny only: nothing", []string{"!push:prod/**"}, []check{{"dev/app", ActionPush, false}, {"dev/app", ActionPull, false}}},
		{"case of the action", []string{"pull:**"}, []check{{"x", Action("PULL"), false}}},
		{"digits and dots", []string{"pull:v1.2/*"}, []check{{"v1.2/x", ActionPull, true}, {"v1x2/x", ActionPull, false}}},
		{"alternatives", []string{"pull:{team-a,team-b}/**"}, []check{
			{"team-a/x", ActionPull, true}, {"team-b/y/z", ActionPull, true}, {"team-c/x", ActionPull, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePermissions(tc.rules)
			if err != nil {
				t.Fatalf("ParsePermissions(%q) = %v", tc.rules, err)
			}
			for _, c := range tc.checks {
				if got := p.Allows(c.repo, c.action); got != c.want {
					t.Errorf("%q.Allows(%q, %s) = %v, want %v", tc.rules, c.repo, c.action, got, c.want)
				}
			}
		})
	}
}

func TestParsePermissionsErrors(t *testing.T) {
	for _, s := range []string{"", "pull", "pull:", "read:x", "!:x", "push:{a", "pull:[", "PULL:x"} {
		if _, err := ParsePermissions([]string{"pull:ok", s}); err == nil || !strings.Contains(err.Error(), "permission") {
			t.Errorf("ParsePermissions(%q) = %v, want an error naming the permission", s, err)
		}
	}
}

func TestPermissionsUnion(t *testing.T) {
	user, _ := ParsePermissions([]string{"push:team/**"})
	group, _ := ParsePermissions([]string{"pull:**", "!push:team/prod"})
	u := user.Union(group, nil)
	for _, c := range []struct {
		repo   string
		action Action
		want   bool
	}{{"team/dev", ActionPush, true}, {"team/prod", ActionPush, false}, {"x", ActionPull, true}, {"x", ActionPush, false}} {
		if got := u.Allows(c.repo, c.action); got != c.want {
			t.Errorf("union.Allows(%q, %s) = %v, want %v", c.repo, c.action, got, c.want)
		}
	}
	var none *Permissions
	if none.Allows("x", ActionPull) || none.String() != "" {
		t.Error("nil Permissions allow something")
	}
	if got := u.String(); got != "push:team/**,pull:**,!push:team/prod" {
		t.Errorf("String() = %q", got)
	}
}

func FuzzParsePermissions(f *testing.F) {
	for _, s := range []string{"pull:*", "!push:team/**", "*:**/dev-*", "delete:{a,b}/[x-z]?", "push:\\*"} {
		f.Add(s, "team/dev-x")
	}
	f.Fuzz(func(t *testing.T, perm, repo string) {
		p, err := ParsePermissions([]string{perm})
		if err != nil {
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", perm)) {
				t.Fatalf("ParsePermissions(%q) = %v, want the error to name it", perm, err)
			}
			return
		}
		// A rule for one action allows no other.
		if action, _, _ := strings.Cut(perm, ":"); action == "pull" && (p.Allows(repo, ActionPush) || p.Allows(repo, ActionDelete)) {
			t.Fatalf("%q allows more than pull on %q", perm, repo)
		}
		// A deny-only set never allows; an allow and its deny never allow.
		deny, _ := ParsePermissions([]string{"!" + strings.TrimPrefix(perm, "!")})
		for _, a := range []Action{ActionPull, ActionPush, ActionDelete} {
			if deny.Allows(repo, a) || p.Union(deny).Allows(repo, a) {
				t.Fatalf("%q with its deny allows %s on %q", perm, a, repo)
			}
		}
	})
}

// BenchmarkPermissionsAllowsMany is a large organisation's rules, and a
// request only the last rule allows: every rule is tried.
func BenchmarkPermissionsAllowsMany(b *testing.B) {
	var rules []string
	for i := range 100 {
		rules = append(rules, fmt.Sprintf("push:team-%d/**", i), fmt.Sprintf("!delete:team-%d/prod-*", i))
	}
	p, err := ParsePermissions(rules)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !p.Allows("team-99/app/api", ActionPush) {
			b.Fatal("denied")
		}
	}
}

func BenchmarkPermissionsAllows(b *testing.B) {
	p, _ := ParsePermissions([]string{"pull:public/**", "push:team-a/**", "!push:team-a/prod/**", "delete:team-a/dev-*", "pull:team-b/*"})
	for b.Loop() {
		p.Allows("team-a/prod/api", ActionPush)
	}
}
