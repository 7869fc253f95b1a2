package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

func TestHtpasswdAndGroups(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	os.WriteFile(file, []byte("# team\ncarol:"+hash(t, "carol-pw")+"\n\ndave:"+hash(t, "dave-pw")+"\n"), 0o600)
	cfg := DefaultConfig()
	cfg.Htpasswd = file
	cfg.Users = []UserConfig{{Name: "alice", Password: hash(t, "alice-pw"), Groups: []string{"ops"}}}
	cfg.Groups = map[string][]string{"dev": {"carol", "alice"}}
	cfg.Rules = []RuleConfig{
		{Groups: []string{"dev"}, Permissions: []string{"push:dev/**"}},
		{Groups: []string{"ops"}, Permissions: []string{"delete:**"}},
		{Users: []string{"dave"}, Permissions: []string{"pull:dev/**"}},
	}
	s, err := New(cfg, dir, zerolog.Nop())
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	for _, c := range []struct {
		user, pw, repo string
		action         Action
		want           bool
	}{
		{"carol", "carol-pw", "dev/app", ActionPush, true},
		{"carol", "carol-pw", "dev/app", ActionDelete, false},
		{"dave", "dave-pw", "dev/app", ActionPull, true},
		{"dave", "dave-pw", "dev/app", ActionPush, false},
		{"alice", "alice-pw", "dev/app", ActionPush, true}, // [auth.groups] adds dev
		{"alice", "alice-pw", "x/y", ActionDelete, true},   // her own ops group
	} {
		id, err := s.checkPassword(basicReq("", ""), c.user, c.pw)
		if err != nil {
			t.Fatalf("checkPassword(%s) = %v", c.user, err)
		}
		if got := id.Grants.Allows(c.repo, c.action); got != c.want {
			t.Errorf("%s %s %s = %v, want %v", c.user, c.action, c.repo, got, c.want)
		}
	}
	if id, _ := s.checkPassword(basicReq("", ""), "alice", "alice-pw"); strings.Join(id.Groups, ",") != "dev,ops" {
		t.Errorf("alice's groups = %q, want dev,ops", id.Groups)
	}

	for name, body := range map[string]string{
		"md5 hash":      "eve:$apr1$abc$defghijklmnopqrstuvwxy\n",
		"no colon":      "eve\n",
		"defined twice": "alice:" + hash(t, "x") + "\n",
	} {
		os.WriteFile(file, []byte(body), 0o600)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "auth.htpasswd") {
			t.Errorf("Validate(htpasswd with %s) = %v, want an auth.htpasswd error", name, err)
		}
	}
	cfg.Htpasswd = filepath.Join(dir, "missing")
	if err := cfg.Validate(); err == nil {
		t.Error("Validate(missing htpasswd) = nil")
	}
}

// TestBasicCache checks that a password is checked by bcrypt once, then
// reused, and only for the very same password.
func TestBasicCache(t *testing.T) {
	s := newService(t)
	if _, err := s.checkPassword(basicReq("", ""), "bob", "bob-pw"); err != nil {
		t.Fatalf("checkPassword(bob) = %v", err)
	}
	s.users["bob"].hash = []byte("not a hash any more")
	if _, err := s.checkPassword(basicReq("", ""), "bob", "bob-pw"); err != nil {
		t.Error("second checkPassword(bob) ran bcrypt again, want the cached check")
	}
	if _, err := s.checkPassword(basicReq("", ""), "bob", "bob-pw2"); err == nil {
		t.Error("checkPassword(bob, another password) succeeded from the cache")
	}
	if _, err := s.checkPassword(basicReq("", ""), "alice", "bob-pw"); err == nil {
		t.Error("checkPassword(alice, bob's password) succeeded from the cache")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := newService(t).cfg
	s, err := New(cfg, t.TempDir(), zerolog.Nop(), WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	getToken(t, s, "alice", "alice-pw", "repository:team/app:pull")
	getToken(t, s, "", "", "repository:public/app:pull")
	getToken(t, s, "alice", "wrong", "repository:team/app:pull")
	s.Authenticate(bearer("garbage"))
	r := basicReq("bob", "bob-pw")
	id, _ := s.Authenticate(r)
	s.Authorize(r, id, "team/app", ActionPush)
	for _, c := range []struct {
		metric prometheus.Collector
		label  string
		want   float64
	}{
		{s.metrics.issued, "user", 1}, {s.metrics.issued, "anonymous", 1},
		{s.metrics.failures, "bad_credentials", 1}, {s.metrics.failures, "invalid_token", 1}, {s.metrics.failures, "denied", 1},
	} {
		var m dto.Metric
		c.metric.(*prometheus.CounterVec).WithLabelValues(c.label).Write(&m)
		if got := m.GetCounter().GetValue(); got != c.want {
			t.Errorf("metric %s = %v, want %v", c.label, got, c.want)
		}
	}
}

// BenchmarkCachedBasicAndRBAC is curl -u on every call: a cached password
// check plus the RBAC decision.
func BenchmarkCachedBasicAndRBAC(b *testing.B) {
	s := newService(b)
	r := basicReq("alice", "alice-pw")
	for b.Loop() {
		id, err := s.Authenticate(r)
		if err != nil || s.Authorize(r, id, "team/app", ActionPush) != nil {
			b.Fatal(err)
		}
	}
}
