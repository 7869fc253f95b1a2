package ui

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/registry"
)

// routes declares every path the dashboard serves, one line each.
func (h *Handler) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	m.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	m.Handle("GET /ui/static/", staticHandler())
	m.HandleFunc("GET /ui/{$}", h.page(h.overviewPage))
	m.HandleFunc("GET /ui/login", h.loginForm)
	m.HandleFunc("POST /ui/login", h.login)
	m.HandleFunc("POST /ui/logout", h.logout)
	m.HandleFunc("GET /ui/repositories", h.page(h.reposPage))
	m.HandleFunc("GET /ui/repositories/{path...}", h.page(h.repoPage))
	m.HandleFunc("GET /ui/activity", h.page(h.activityPage))
	m.HandleFunc("GET /ui/storage", h.page(h.storagePage))
	m.HandleFunc("POST /ui/repositories/{path...}", h.page(h.deletePage))
	m.HandleFunc("GET /ui/robots", h.page(h.robotsPage))
	m.HandleFunc("POST /ui/robots", h.page(h.robotsPage))
	m.HandleFunc("POST /ui/robots/{name}/revoke", h.page(h.robotsPage))
	m.HandleFunc("GET /ui/gc", h.page(h.gcPage))
	m.HandleFunc("POST /ui/gc", h.page(h.gcPage))
	m.HandleFunc("/ui/", h.page(notFoundPage))
	m.HandleFunc("GET /api/v1/overview", h.api(h.apiOverview))
	m.HandleFunc("GET /api/v1/repositories", h.api(h.apiRepositories))
	m.HandleFunc("GET /api/v1/repositories/{path...}", h.api(h.apiRepository))
	m.HandleFunc("GET /api/v1/activity", h.api(h.apiActivity))
	m.HandleFunc("GET /api/v1/storage/history", h.api(h.apiStorageHistory))
	m.HandleFunc("DELETE /api/v1/repositories/{path...}", h.api(h.apiDelete))
	m.HandleFunc("POST /api/v1/repositories/{path...}", h.api(h.apiDeleteTags))
	m.HandleFunc("GET /api/v1/robots", h.api(h.apiRobots))
	m.HandleFunc("POST /api/v1/robots", h.api(h.apiRobots))
	m.HandleFunc("DELETE /api/v1/robots/{name}", h.api(h.apiRobots))
	m.HandleFunc("GET /api/v1/maintenance", h.api(h.apiMaintenance))
	m.HandleFunc("POST /api/v1/maintenance/{kind}", h.api(h.apiRun))
	m.HandleFunc("/api/v1/", h.api(apiNotFound))
	return m
}

// repoPath is a path below /repositories/: a repository name, then
// nothing, "/tags", or "/manifests/<digest>".
type repoPath struct {
	name   string
	suffix string // "", "tags" or "manifests"
	digest digest.Digest
}

// parseRepoPath splits p from its end, since names contain slashes, and
// validates the name and digest.
func parseRepoPath(p string) (repoPath, error) {
	var rp repoPath
	if i := strings.LastIndex(p, "/manifests/"); i >= 0 {
		rp.name, rp.suffix = p[:i], "manifests"
		d, err := digest.Parse(p[i+len("/manifests/"):])
		if err != nil {
			return rp, apiError(registry.CodeDigestInvalid, "invalid digest")
		}
		rp.digest = d
	} else if name, ok := strings.CutSuffix(p, "/tags"); ok {
		rp.name, rp.suffix = name, "tags"
	} else {
		rp.name = p
	}
	return rp, checkName(rp.name)
}

// pageArgs reads ?n= and ?last=.
func pageArgs(r *http.Request) (n int, last string, err error) {
	n = defaultPage
	if s := r.URL.Query().Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > maxPage {
			return 0, "", apiError(registry.CodePaginationInvalid, "n must be a number from 1 to "+strconv.Itoa(maxPage))
		}
		n = v
	}
	return n, r.URL.Query().Get("last"), nil
}
