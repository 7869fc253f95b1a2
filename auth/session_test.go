package auth

import (
	"context"
	"testing"

	"github.com/rs/zerolog"
)

func TestSubject(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	id, gen, ok := s.Subject(ctx, KindUser, "alice")
	if !ok || id.Name != "alice" || id.Kind != KindUser || gen == "" || !id.Grants.Allows("team/app", ActionPush) || !id.Grants.Allows("public/x", ActionPull) {
		t.Fatalf("Subject(user alice) = %+v, %q, %v", id, gen, ok)
	}
	if _, again, _ := s.Subject(ctx, KindUser, "alice"); again != gen {
		t.Errorf("Subject(alice) generation changed between calls: %q, %q", gen, again)
	}
	for _, tc := range []struct {
		kind Kind
		name string
	}{{KindUser, "mallory"}, {KindRobot, "ci"}, {KindOIDC, "alice"}, {KindAnonymous, ""}} {
		if _, _, ok := s.Subject(ctx, tc.kind, tc.name); ok {
			t.Errorf("Subject(%s %q) = ok, want not found", tc.kind, tc.name)
		}
	}
	// Over one data directory (one key), the same configuration is the
	// same generation after a restart, and a new password a new one.
	dir := t.TempDir()
	genOf := func(passwordHash string) string {
		cfg := s.cfg
		cfg.Users = []UserConfig{{Name: "alice", Password: passwordHash}}
		svc, err := New(cfg, dir, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		_, g, _ := svc.Subject(ctx, KindUser, "alice")
		return g
	}
	old := hash(t, "old")
	first := genOf(old)
	if g := genOf(old); g != first {
		t.Errorf("Subject(alice) generation after a restart = %q, want %q", g, first)
	}
	if genOf(hash(t, "new")) == first {
		t.Error("Subject(alice) generation unchanged by a new password")
	}
}
