package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var funcs = template.FuncMap{
	"bytes": humanBytes,
	"short": func(d fmt.Stringer) string { return short(d.String()) },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"join":    strings.Join,
	"escape":  url.PathEscape,
	"uptime":  func(sec int64) string { return (time.Duration(sec) * time.Second).String() },
	"seconds": func(sec float64) string { return time.Duration(sec * float64(time.Second)).Round(time.Second).String() },
	"percent": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"abbrev":  short,
	"dict":    func(repo string, refs []Referrer) referrerTree { return referrerTree{repo, refs} },
}

// referrerTree is one level of the referrers tree a template recurses on.
type referrerTree struct {
	Repository string
	Referrers  []Referrer
}

// pages returns one template set per page: the layout and that page.
// They are parsed on the first page served, not at init, so commands that
// never serve the dashboard don't pay for it.
var pages = sync.OnceValue(func() map[string]*template.Template {
	out := map[string]*template.Template{}
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		out[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = template.Must(
			template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return out
})

// short abbreviates a digest to its algorithm and 12 hex digits.
func short(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// view is what every page's template gets.
type view struct {
	Title    string
	AuthOn   bool
	LoggedIn bool
	Admin    bool // shows the admin pages in the menu
	Who      string
	CSRF     string
	Host     string
	TLS      bool
	Path     string
	Error    string
	Notice   string // what a change just did
	Redirect string // set by a page handler: answer 303 to it instead
	Data     any
}

// pageHandler renders a page into v or returns an error.
type pageHandler func(r *http.Request, c caller, v *view) (page string, err error)

func (h *Handler) page(fn pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := h.identify(r)
		v := &view{AuthOn: h.auth != nil, Host: r.Host, TLS: r.TLS != nil, Path: r.URL.RequestURI()}
		name := "error"
		if err == nil {
			registry.NoteIdentity(w, c.id)
			v.LoggedIn = c.loggedIn()
			v.Who = whoami(c.id)
			v.CSRF = h.csrfToken(c)
			v.Admin = c.isAdmin()
			name, err = fn(r, c, v)
		}
		if err == nil && v.Redirect != "" {
			http.Redirect(w, r, v.Redirect, http.StatusSeeOther)
			return
		}
		status := http.StatusOK
		if err != nil {
			e := registry.AsError(err)
			if e.Code == registry.CodeUnauthorized && h.auth != nil {
				http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			h.logError(r, err)
			name, status = "error", e.Code.Status
			v.Title, v.Error = http.StatusText(status), message(e)
		}
		h.render(w, status, name, v)
	}
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, v *view) {
	var buf bytes.Buffer
	if err := pages()[name].Execute(&buf, v); err != nil {
		h.log.Error().Err(err).Str("page", name).Msg("dashboard template")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func notFoundPage(*http.Request, caller, *view) (string, error) {
	return "", apiError(registry.CodeNotFound, "no such page")
}

func (h *Handler) overviewPage(r *http.Request, c caller, v *view) (string, error) {
	o, err := h.overview(r.Context(), c)
	v.Title, v.Data = "Overview", o
	return "overview", err
}

func (h *Handler) reposPage(r *http.Request, c caller, v *view) (string, error) {
	l, err := h.listRepositories(r, c)
	v.Title, v.Data, v.Notice = "Repositories", l, deletedNotice(r)
	if e, ok := err.(*registry.Error); ok && e.Code == codeInvalid {
		v.Error, err = e.Message, nil // shown above the empty list
	}
	return "repositories", err
}

// repoView is a repository page: a page of tags and how to pull them.
type repoView struct {
	TagList
	Pull    string // name as clients pull it, host included
	PullTag string // latest if on the page, else the page's first tag
	Ctr     string // ctr's flag for a registry without TLS
	// MayDelete shows the delete controls.
	MayDelete bool
}

func (h *Handler) repoPage(r *http.Request, c caller, v *view) (string, error) {
	rp, err := parseRepoPath(r.PathValue("path"))
	if err != nil {
		return "", err
	}
	if err := c.mayPull(rp.name); err != nil {
		return "", err
	}
	switch rp.suffix {
	case "manifests":
		m, err := h.manifest(r.Context(), rp.name, rp.digest)
		v.Title, v.Data = rp.name+"@"+short(rp.digest.String()), m
		return "manifest", err
	case "tags":
		return "", apiError(registry.CodeNotFound, "no such page")
	}
	n, last, err := pageArgs(r)
	if err != nil {
		return "", err
	}
	l, err := h.tags(r.Context(), rp.name, last, n)
	rv := repoView{TagList: l, Pull: r.Host + "/" + rp.name, MayDelete: c.mayDelete(rp.name) == nil}
	for i, t := range l.Tags {
		if i == 0 || t.Name == "latest" {
			rv.PullTag = t.Name
		}
	}
	if r.TLS == nil {
		rv.Ctr = "--plain-http "
	}
	v.Title, v.Data, v.Notice = rp.name, rv, deletedNotice(r)
	return "repository", err
}

// whoami names an identity for the header.
func whoami(id *auth.Identity) string {
	if id.Kind == auth.KindRobot {
		return id.Name + " (robot)"
	}
	return id.Name
}
