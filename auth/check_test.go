package auth

import (
	"strings"
	"testing"
)

func TestWarningsPushWithoutPull(t *testing.T) {
	alice := UserConfig{Name: "alice", Password: strings.Repeat("$", 60), Groups: []string{"team-a"}}
	tests := []struct {
		name      string
		anonymous []string
		rules     []RuleConfig
		oidc      []OIDCRule
		want      []string // one substring per warning, in order
	}{
		{"push and pull", nil, []RuleConfig{{Users: []string{"alice"}, Permissions: []string{"push:team-a/**", "pull:team-a/**"}}}, nil, nil},
		{"star action", nil, []RuleConfig{{Groups: []string{"team-a"}, Permissions: []string{"*:team-a/**"}}}, nil, nil},
		{"pull from another rule", nil, []RuleConfig{
			{Users: []string{"alice"}, Permissions: []string{"push:team-a/**"}},
			{Groups: []string{"team-a"}, Permissions: []string{"pull:**"}}}, nil, nil},
		{"pull from anonymous", []string{"pull:team-a/**"}, []RuleConfig{{Users: []string{"alice"}, Permissions: []string{"push:team-a/*"}}}, nil, nil},
		{"user", nil, []RuleConfig{{Users: []string{"alice"}, Permissions: []string{"push:team-a/**", "pull:team-a/*"}}}, nil,
			[]string{`auth.rules[0]: user "alice" may push to "team-a/**" but not pull`}},
		{"group, pull denied", nil, []RuleConfig{{Groups: []string{"team-a"}, Permissions: []string{"push:{team-a,team-b}/**", "pull:**", "!pull:team-a/**"}}}, nil,
			[]string{`auth.rules[0]: user "alice" may push to "{team-a,team-b}/**"`}},
		{"robot", nil, []RuleConfig{{Robots: []string{"ci-bot"}, Permissions: []string{"push:ci/*"}}}, nil,
			[]string{`auth.rules[0]: robot "ci-bot"`}},
		{"anonymous", []string{"push:drop/**"}, nil, nil, []string{`auth.anonymous may push to "drop/**"`}},
		{"oidc rule", nil, nil, []OIDCRule{{Claims: map[string]string{"sub": "x"}, Permissions: []string{"push:my-org/**"}}},
			[]string{`auth.oidc[0].rules[0] may push to "my-org/**"`}},
		{"character class", nil, []RuleConfig{{Users: []string{"alice"}, Permissions: []string{"push:team-[ab]", `push:x\*`, "pull:x*"}}}, nil,
			[]string{`may push to "team-[ab]"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Users = []UserConfig{alice}
			cfg.Anonymous, cfg.Rules = tc.anonymous, tc.rules
			if tc.oidc != nil {
				cfg.OIDC = []OIDCConfig{{Issuer: "https://issuer.example", Audience: "nora", Rules: tc.oidc}}
			}
			got := cfg.Warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("Warnings() = %q, want %d warning(s) %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("Warnings()[%d] = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
