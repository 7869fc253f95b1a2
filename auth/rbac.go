package auth

import (
	"fmt"
	"strings"

	"github.com/gobwas/glob"
)

// repoGlobs compiles repository globs: `*` and `?` stay within one path
// segment, `**` crosses segments, and `**/` also matches no segment at all.
var repoGlobs = glob.Compiler{Separators: []rune{'/'}, Globstar: true}

// rule is one compiled permission string.
type rule struct {
	deny   bool
	action Action // ActionAll for every action
	repo   *glob.Pattern
	// root is the glob before a trailing "/**": a rule on a tree also
	// covers the tree's root, so `!delete:team/prod/**` protects
	// team/prod itself, as whoever wrote it expects. nil otherwise.
	root *glob.Pattern
	text string
}

func (r *rule) matches(repo string) bool {
	return r.repo.Match(repo) || (r.root != nil && r.root.Match(repo))
}

// validAction reports whether a is an action of permissions and scopes.
func validAction(a Action) bool {
	switch a {
	case ActionPull, ActionPush, ActionDelete, ActionAll:
		return true
	}
	return false
}

// Permissions is a compiled set of permission strings such as `pull:*`,
// `push:team-a/**` or `!delete:prod/**`. The zero value allows nothing.
//
// Precedence: a request is allowed when at least one allow rule matches its
// action and repository and no deny rule does. Deny always wins; order does
// not matter. A glob ending in "/**" matches the repository it names too:
// `push:team/**` allows team and team/app, and `!delete:team/prod/**` denies
// deleting team/prod as well as everything under it.
type Permissions struct {
	rules []rule
}

// ParsePermissions compiles permission strings `[!]action:repo-glob`, with
// actions pull, push, delete and `*`, and `admin:*` for the dashboard's
// admin pages (its glob is ignored). An error names the bad string.
func ParsePermissions(perms []string) (*Permissions, error) {
	p := &Permissions{}
	for _, s := range perms {
		r, err := parseRule(s)
		if err != nil {
			return nil, err
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func parseRule(s string) (rule, error) {
	r := rule{text: s}
	body, deny := strings.CutPrefix(s, "!")
	r.deny = deny
	action, pattern, ok := strings.Cut(body, ":")
	if !ok || pattern == "" {
		return r, fmt.Errorf("permission %q: want action:repository-glob, e.g. pull:team/**", s)
	}
	if r.action = Action(action); r.action == ActionAdmin {
		return r, nil // the dashboard's admin pages: the glob is not a repository
	}
	if !validAction(r.action) {
		return r, fmt.Errorf("permission %q: unknown action %q (want pull, push, delete, * or admin)", s, action)
	}
	g, err := repoGlobs.Compile(pattern)
	if err != nil {
		return r, fmt.Errorf("permission %q: %w", s, err)
	}
	r.repo = g
	if root, ok := strings.CutSuffix(pattern, "/**"); ok && root != "" {
		if r.root, err = repoGlobs.Compile(root); err != nil {
			return r, fmt.Errorf("permission %q: %w", s, err)
		}
	}
	return r, nil
}

// Allows reports whether the permissions allow action on repo. A nil
// Permissions allows nothing, and no rule allows an action other than
// pull, push or delete (`*` in a rule means each of them, not any word).
func (p *Permissions) Allows(repo string, action Action) bool {
	if p == nil || action == ActionAll || !validAction(action) {
		return false
	}
	allowed := false
	for i := range p.rules {
		r := &p.rules[i]
		if r.action != ActionAll && r.action != action {
			continue
		}
		if !r.matches(repo) {
			continue
		}
		if r.deny {
			return false
		}
		allowed = true
	}
	return allowed
}

// IsAdmin reports whether the permissions hold `admin:*` (the glob is
// ignored) and no `!admin:…` rule. `*:…` rules do not make an admin.
func (p *Permissions) IsAdmin() bool {
	if p == nil {
		return false
	}
	admin := false
	for _, r := range p.rules {
		if r.action == ActionAdmin {
			if r.deny {
				return false
			}
			admin = true
		}
	}
	return admin
}

// Union returns the permissions of p and others together; a deny in any of
// them still wins.
func (p *Permissions) Union(others ...*Permissions) *Permissions {
	u := &Permissions{}
	for _, q := range append([]*Permissions{p}, others...) {
		if q != nil {
			u.rules = append(u.rules, q.rules...)
		}
	}
	return u
}

// String lists the permission strings, for logs and `token list`.
func (p *Permissions) String() string {
	if p == nil {
		return ""
	}
	texts := make([]string, len(p.rules))
	for i, r := range p.rules {
		texts[i] = r.text
	}
	return strings.Join(texts, ",")
}
