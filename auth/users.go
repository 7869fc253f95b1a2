package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
)

// user is a configured user with its permissions compiled from the rules.
type user struct {
	name   string
	hash   []byte
	groups []string
	perms  *Permissions
	// generation names the user's password hash, groups and rules, for
	// refresh tokens; set by the Service, which holds the key.
	generation string
}

// credentials returns what a refresh token must outlive no change of: the
// password hash, the groups, and the permission strings (sorted: the order
// of rules changes nothing).
func (u *user) credentials() []string {
	texts := make([]string, len(u.perms.rules))
	for i, r := range u.perms.rules {
		texts[i] = r.text
	}
	slices.Sort(texts)
	return []string{string(u.hash), strings.Join(u.groups, "\x00"), strings.Join(texts, "\x00")}
}

// readHtpasswd reads "name:bcrypt-hash" lines. Blank lines and lines
// starting with '#' are skipped; hashes other than bcrypt (MD5, SHA-1,
// crypt) are refused rather than silently never matching.
func readHtpasswd(path string) ([]UserConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var users []UserConfig
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: want name:hash", path, n)
		}
		if !isBcrypt(hash) {
			return nil, fmt.Errorf("%s:%d: user %q: only bcrypt hashes are accepted (htpasswd -B)", path, n, name)
		}
		users = append(users, UserConfig{Name: name, Password: hash})
	}
	return users, sc.Err()
}

func isBcrypt(h string) bool {
	return len(h) == 60 && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"))
}

// allUsers returns the [[auth.users]] entries followed by the htpasswd
// file's users; a name defined twice is an error.
func (c Config) allUsers() ([]UserConfig, error) {
	users := slices.Clone(c.Users)
	if c.Htpasswd != "" {
		more, err := readHtpasswd(c.Htpasswd)
		if err != nil {
			return nil, fmt.Errorf("auth.htpasswd: %w", err)
		}
		for _, u := range more {
			if slices.ContainsFunc(users, func(v UserConfig) bool { return v.Name == u.Name }) {
				return nil, fmt.Errorf("auth.htpasswd: user %q is defined twice", u.Name)
			}
			users = append(users, u)
		}
	}
	return users, nil
}

// buildUsers compiles each user's permissions: every rule naming the user,
// one of its groups ([[auth.users]] groups or [auth.groups] membership).
func (c Config) buildUsers() (map[string]*user, error) {
	all, err := c.allUsers()
	if err != nil {
		return nil, err
	}
	users := make(map[string]*user, len(all))
	for _, u := range all {
		groups := slices.Clone(u.Groups)
		for g, members := range c.Groups {
			if slices.Contains(members, u.Name) && !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
		slices.Sort(groups)
		var perms []*Permissions
		for i, r := range c.Rules {
			if slices.Contains(r.Users, u.Name) || slices.ContainsFunc(r.Groups, func(g string) bool { return slices.Contains(groups, g) }) {
				p, err := ParsePermissions(r.Permissions)
				if err != nil {
					return nil, fmt.Errorf("auth.rules[%d].permissions: %w", i, err)
				}
				perms = append(perms, p)
			}
		}
		users[u.Name] = &user{name: u.Name, hash: []byte(u.Password), groups: groups, perms: (&Permissions{}).Union(perms...)}
	}
	return users, nil
}

// robotPermissions compiles what robot token name may do: the permissions
// it was created with and those of every rule naming it.
func (c Config) robotPermissions(name string, own []string) (*Permissions, error) {
	p, err := ParsePermissions(own)
	if err != nil {
		return nil, err
	}
	for _, r := range c.Rules {
		if slices.Contains(r.Robots, name) {
			q, err := ParsePermissions(r.Permissions)
			if err != nil {
				return nil, err
			}
			p = p.Union(q)
		}
	}
	return p, nil
}
