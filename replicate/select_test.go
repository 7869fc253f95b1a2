package replicate

import (
	"fmt"
	"strings"
	"testing"
)

func TestSelection(t *testing.T) {
	catalog := []string{"team/app", "team/base", "team/sub/deep", "other/app", "solo"}
	tests := []struct {
		repos       []string
		needCatalog bool
		want        string
	}{
		{nil, true, "[team/app team/base team/sub/deep other/app solo]"},
		{[]string{"team/*"}, true, "[team/app team/base]"},
		{[]string{"team/**"}, true, "[team/app team/base team/sub/deep]"},
		{[]string{"*/app"}, true, "[team/app other/app]"},
		{[]string{"solo"}, false, "[solo]"},
		{[]string{"missing/repo"}, false, "[missing/repo]"},
		{[]string{"solo", "team/*", "team/app"}, true, "[solo team/app team/base]"},
	}
	for _, tt := range tests {
		s, err := NewSelection(tt.repos, nil)
		if err != nil {
			t.Fatalf("NewSelection(%q) = %v", tt.repos, err)
		}
		if got := s.NeedsCatalog(); got != tt.needCatalog {
			t.Errorf("NewSelection(%q).NeedsCatalog() = %v, want %v", tt.repos, got, tt.needCatalog)
		}
		in := catalog
		if !s.NeedsCatalog() {
			in = nil
		}
		if got := fmt.Sprint(s.Repos(in)); got != tt.want {
			t.Errorf("NewSelection(%q).Repos = %s, want %s", tt.repos, got, tt.want)
		}
	}
	if _, err := NewSelection([]string{"team/[a"}, nil); err == nil || !strings.Contains(err.Error(), `"team/[a"`) {
		t.Errorf("NewSelection(team/[a) = %v, want an error naming the glob", err)
	}
}

func TestSelectionTags(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	tags := []string{"v1", "v1.1", "v2", "latest", "sha256-" + hex, "sha256-" + hex + ".sig", "sha256-short.sig"}
	tests := []struct {
		globs []string
		want  string
	}{
		{nil, "[v1 v1.1 v2 latest sha256-short.sig]"}, // referrers tags travel with their subject
		{[]string{"v1*"}, "[v1 v1.1]"},
		{[]string{"v1", "latest"}, "[v1 latest]"},
		{[]string{"sha256-*"}, "[sha256-short.sig]"},
	}
	for _, tt := range tests {
		s, _ := NewSelection(nil, tt.globs)
		if got := fmt.Sprint(s.Tags(tags)); got != tt.want {
			t.Errorf("Tags(%q) = %s, want %s", tt.globs, got, tt.want)
		}
	}
}

func TestAttached(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	tags := []string{"v1", "sha256-" + a, "sha256-" + a + ".sig", "sha256-" + a + ".att", "sha256-" + b + ".sig", "sha256-" + a + "x"}
	got := Attached(tags, map[string]bool{"sha256:" + a: true})
	want := []string{"sha256-" + a, "sha256-" + a + ".sig", "sha256-" + a + ".att"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Attached = %v, want %v", got, want)
	}
}

func TestTargetName(t *testing.T) {
	for _, tt := range []struct{ prefix, repo, want string }{
		{"", "team/app", "team/app"},
		{"edge", "team/app", "edge/team/app"},
		{"edge/", "app", "edge/app"},
	} {
		if got := TargetName(tt.prefix, tt.repo); got != tt.want {
			t.Errorf("TargetName(%q, %q) = %q, want %q", tt.prefix, tt.repo, got, tt.want)
		}
	}
}

func TestParseRemote(t *testing.T) {
	tests := []struct {
		in, reg, scheme, path, err string
	}{
		{in: "registry.example.com", reg: "registry.example.com", scheme: "https"},
		{in: "https://registry.example.com:8443/team/**", reg: "registry.example.com:8443", scheme: "https", path: "team/**"},
		{in: "http://edge.local:5000", reg: "edge.local:5000", scheme: "http"},
		{in: "localhost:5000/app/", reg: "localhost:5000", scheme: "http", path: "app"},
		{in: "ftp://x", err: "want http:// or https://"},
		{in: "/team/app", err: "no host"},
	}
	for _, tt := range tests {
		reg, path, err := ParseRemote(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRemote(%q) = %v, want error %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || reg.Name() != tt.reg || reg.Scheme() != tt.scheme || path != tt.path {
			t.Errorf("ParseRemote(%q) = %s (%s), %q, %v; want %s (%s), %q", tt.in, reg.Name(), reg.Scheme(), path, err, tt.reg, tt.scheme, tt.path)
		}
	}
}
