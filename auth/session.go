package auth

import (
	"context"
	"time"
)

// Subject returns the identity the user or robot named has now, with a
// generation that changes whenever its credentials or rules do (for a
// user: password hash, groups, rules; for a robot: its token). A session
// that recorded the generation at login ends when it no longer matches.
// ok is false for a name that is no configured user or live robot, and
// for other kinds.
func (s *Service) Subject(ctx context.Context, kind Kind, name string) (id *Identity, generation string, ok bool) {
	switch kind {
	case KindUser:
		if u := s.users[name]; u != nil {
			return s.userIdentity(u), u.generation, true
		}
	case KindRobot:
		if s.robots == nil {
			return nil, "", false
		}
		rb, live := s.robots.byName(ctx, name)
		if !live {
			return nil, "", false
		}
		p, err := s.cfg.robotPermissions(rb.Name, rb.Permissions)
		if err != nil {
			return nil, "", false
		}
		gen := s.signer.mac("robot", rb.Name, string(rb.Hash), rb.Created.Format(time.RFC3339Nano))
		return &Identity{Name: rb.Name, Kind: KindRobot, Grants: s.withAnonymous(p)}, gen, true
	}
	return nil, "", false
}

// RepoGlob compiles a repository glob as permission strings read one:
// `*` and `?` stay within one path segment, `**` crosses segments.
func RepoGlob(pattern string) (match func(repo string) bool, err error) {
	g, err := repoGlobs.Compile(pattern)
	if err != nil {
		return nil, err
	}
	return g.Match, nil
}
