package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Warnings reports rules that are valid but likely not what was meant:
// push on a repository glob without pull on it. Docker, podman and every
// other client check which blobs exist (a HEAD, which needs pull) before
// they push, so such a push fails. Anonymous rights count, since every
// caller has them. cfg must be valid.
func (c Config) Warnings() []string {
	anon, _ := ParsePermissions(c.Anonymous)
	var warns []string
	check := func(who string, g Grants, perms []string) {
		for _, text := range perms {
			pattern, ok := strings.CutPrefix(text, string(ActionPush)+":")
			if ok && pushWithoutPull(g, pattern) {
				warns = append(warns, fmt.Sprintf("%s may push to %q but not pull from it: clients pull-check blobs before pushing, so pushes fail; add \"pull:%s\"", who, pattern, pattern))
			}
		}
	}
	check("auth.anonymous", anon, c.Anonymous)
	users, err := c.buildUsers()
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(users))
	for name := range users {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		u := users[name]
		g := eitherGrants{u.perms, anon}
		for i, r := range c.Rules {
			if slices.Contains(r.Users, name) || slices.ContainsFunc(r.Groups, func(gr string) bool { return slices.Contains(u.groups, gr) }) {
				check(fmt.Sprintf("auth.rules[%d]: user %q", i, name), g, r.Permissions)
			}
		}
	}
	for i, r := range c.Rules {
		for _, robot := range r.Robots {
			p, _ := c.robotPermissions(robot, nil)
			check(fmt.Sprintf("auth.rules[%d]: robot %q (unless its token was created with pull)", i, robot), eitherGrants{p, anon}, r.Permissions)
		}
	}
	for i, o := range c.OIDC {
		for j, r := range o.Rules {
			p, _ := ParsePermissions(r.Permissions)
			check(fmt.Sprintf("auth.oidc[%d].rules[%d]", i, j), eitherGrants{p, anon}, r.Permissions)
		}
	}
	return warns
}

// pushWithoutPull reports whether g allows push but not pull on a
// repository that pattern matches, trying a few names made from it.
func pushWithoutPull(g Grants, pattern string) bool {
	for _, name := range sampleNames(pattern) {
		if g.Allows(name, ActionPush) && !g.Allows(name, ActionPull) {
			return true
		}
	}
	return false
}

// sampleNames returns names a repository glob matches, or that it
// probably matches: `**` as one and as two segments, `*` and `?` as "x",
// `{a,b}` as its first choice, a class `[a-z]` as its first character and
// `[!a]` as "x" (a name the glob does not match is harmless:
// pushWithoutPull then finds no push there).
func sampleNames(pattern string) []string {
	var out []string
	for _, globstar := range []string{"x", "x/y"} {
		var b strings.Builder
		for i := 0; i < len(pattern); i++ {
			switch c := pattern[i]; c {
			case '\\':
				if i+1 < len(pattern) {
					i++
					b.WriteByte(pattern[i])
				}
			case '*':
				if i+1 < len(pattern) && pattern[i+1] == '*' {
					i++
					b.WriteString(globstar)
				} else {
					b.WriteByte('x')
				}
			case '?':
				b.WriteByte('x')
			case '{', '[':
				end := strings.IndexByte(pattern[i:], map[byte]byte{'{': '}', '[': ']'}[c])
				if end < 0 {
					return out
				}
				inside := pattern[i+1 : i+end]
				switch {
				case c == '{':
					first, _, _ := strings.Cut(inside, ",")
					b.WriteString(first)
				case inside == "" || inside[0] == '!' || inside[0] == '^':
					b.WriteByte('x')
				default:
					b.WriteByte(inside[0])
				}
				i += end
			default:
				b.WriteByte(c)
			}
		}
		out = append(out, b.String())
	}
	return out
}
