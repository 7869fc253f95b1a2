package auth

import (
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
			{"team", ActionPush, false}, {"team-evil/x", ActionPush, false}}},
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
			return
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

func BenchmarkPermissionsAllows(b *testing.B) {
	p, _ := ParsePermissions([]string{"pull:public/**", "push:team-a/**", "!push:team-a/prod/**", "delete:team-a/dev-*", "pull:team-b/*"})
	for b.Loop() {
		p.Allows("team-a/prod/api", ActionPush)
	}
}
