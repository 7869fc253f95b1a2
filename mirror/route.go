package mirror

import "strings"

// Route is where a request's repository lives: upstream Upstream's
// repository Repo, cached locally as Local.
type Route struct {
	Upstream *Upstream
	// Repo is the repository name on the upstream, e.g. library/nginx.
	Repo string
	// Local is the name the cache stores it under and RBAC checks:
	// the upstream's first host, a slash, Repo.
	Local string
}

// Router maps repository names to upstreams. It is immutable, so safe for
// concurrent use.
type Router struct {
	byHost map[string]*Upstream
	def    *Upstream
}

// NewRouter returns the router of a validated Config.
func NewRouter(c Config) *Router {
	r := &Router{byHost: map[string]*Upstream{}}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		for _, h := range u.Hosts {
			r.byHost[h] = u
		}
		if u.Default {
			r.def = u
		}
	}
	return r
}

// Route returns the upstream route of the repository name, given the
// request's ?ns= value, or ok false when the name is served locally. In
// order: an ns naming a configured host routes name to it (an ns naming
// none is served locally, never dialled); a first path segment that is a
// configured host routes the rest of the name to it; otherwise the
// default upstream takes names for which isLocal reports false. Pass a nil
// isLocal for requests the default upstream must not take (pushes, which
// would otherwise be refused for every new local repository).
func (r *Router) Route(name, ns string, isLocal func(string) bool) (rt Route, ok bool) {
	var u *Upstream
	repo := name
	switch {
	case ns != "":
		if u = r.byHost[ns]; u == nil {
			return rt, false
		}
	default:
		if host, rest, found := strings.Cut(name, "/"); found && r.byHost[host] != nil {
			u, repo = r.byHost[host], rest
		} else if r.def != nil && isLocal != nil && !isLocal(name) {
			u = r.def
		}
	}
	if u == nil {
		return rt, false
	}
	if !strings.Contains(repo, "/") && u.isDockerHub() {
		repo = "library/" + repo
	}
	return Route{Upstream: u, Repo: repo, Local: u.Hosts[0] + "/" + repo}, true
}

// isDockerHub reports whether u answers for docker.io, whose one-segment
// names mean library/<name>.
func (u *Upstream) isDockerHub() bool {
	for _, h := range u.Hosts {
		if h == "docker.io" {
			return true
		}
	}
	return false
}

// upstreams yields each configured upstream once.
func (r *Router) upstreams() map[*Upstream]bool {
	set := map[*Upstream]bool{}
	for _, u := range r.byHost {
		set[u] = true
	}
	return set
}
