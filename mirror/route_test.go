package mirror

import "testing"

func TestRoute(t *testing.T) {
	cfg := Config{Upstreams: []Upstream{
		{Name: "hub", URL: "https://registry-1.docker.io", Hosts: []string{"docker.io", "index.docker.io"}, Default: true},
		{Name: "ghcr", URL: "https://ghcr.io", Hosts: []string{"ghcr.io"}},
	}}
	r := NewRouter(cfg)
	local := func(name string) bool { return name == "team/app" || name == "mine" }
	for _, tc := range []struct {
		name, ns string
		isLocal  func(string) bool
		wantUp   string // "" means served locally
		repo     string
		localNm  string
	}{
		{"library/nginx", "docker.io", local, "hub", "library/nginx", "docker.io/library/nginx"},
		{"nginx", "docker.io", local, "hub", "library/nginx", "docker.io/library/nginx"},
		{"org/app", "ghcr.io", local, "ghcr", "org/app", "ghcr.io/org/app"},
		{"app", "ghcr.io", local, "ghcr", "app", "ghcr.io/app"}, // no library/ outside Docker Hub
		{"team/app", "docker.io", local, "hub", "team/app", "docker.io/team/app"},
		// An ns naming no configured host is never dialled, and not
		// routed by prefix or default either.
		{"library/nginx", "evil.example.com", local, "", "", ""},
		{"docker.io/library/nginx", "evil.example.com", local, "", "", ""},
		{"docker.io/library/nginx", "", local, "hub", "library/nginx", "docker.io/library/nginx"},
		{"index.docker.io/library/nginx", "", local, "hub", "library/nginx", "docker.io/library/nginx"},
		{"docker.io/nginx", "", local, "hub", "library/nginx", "docker.io/library/nginx"},
		{"ghcr.io/org/app", "", local, "ghcr", "org/app", "ghcr.io/org/app"},
		{"ghcr.io/org/app", "", nil, "ghcr", "org/app", "ghcr.io/org/app"},
		// Default upstream: not for local repositories, not without isLocal.
		{"nginx", "", local, "hub", "library/nginx", "docker.io/library/nginx"},
		{"someone/tool", "", local, "hub", "someone/tool", "docker.io/someone/tool"},
		{"team/app", "", local, "", "", ""},
		{"mine", "", local, "", "", ""},
		{"nginx", "", nil, "", "", ""},
		{"quay.io/org/app", "", nil, "", "", ""},
	} {
		rt, ok := r.Route(tc.name, tc.ns, tc.isLocal)
		got := ""
		if ok {
			got = rt.Upstream.Name
		}
		if got != tc.wantUp || rt.Repo != tc.repo || rt.Local != tc.localNm {
			t.Errorf("Route(%q, ns=%q) = (%q, %q, %q), want (%q, %q, %q)", tc.name, tc.ns, got, rt.Repo, rt.Local, tc.wantUp, tc.repo, tc.localNm)
		}
	}
	if _, ok := NewRouter(Config{Upstreams: cfg.Upstreams[1:]}).Route("nginx", "", local); ok {
		t.Errorf("Route without a default upstream routed a plain name")
	}
}
