package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/nora-registry/nora/registry"
)

// deleteView is the preview of a delete, with the form that confirms it.
type deleteView struct {
	Repository string
	Whole      bool     // the repository
	Tags       []string // the tags, unless Whole
	Counts     RepoDeletion
}

// deletePage answers POST /ui/repositories/{name}/delete. Without
// confirm it previews: the tags selected (tag, or one), matching glob,
// or, with repository=1, the whole repository. With confirm=1 it deletes
// what the preview listed and sends the browser back.
func (h *Handler) deletePage(r *http.Request, c caller, v *view) (string, error) {
	name, ok := strings.CutSuffix(r.PathValue("path"), "/delete")
	if !ok {
		return "", apiError(registry.CodeNotFound, "no such page")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxDeleteBody)
	if err := r.ParseForm(); err != nil {
		return "", apiError(codeInvalid, "invalid form")
	}
	f := r.PostForm
	if err := h.deletable(r, c, name, f.Get("csrf")); err != nil {
		return "", err
	}
	back := "/ui/repositories/" + name
	dv := deleteView{Repository: name, Whole: f.Get("repository") == "1"}
	v.Title, v.Data = "Delete from "+name, &dv
	if dv.Whole {
		d, err := h.deleteRepository(r, c, name, f.Get("confirm") != "1")
		dv.Counts = d
		if err == nil && !d.DryRun {
			v.Redirect = "/ui/repositories?deleted=" + url.QueryEscape(name)
		}
		return "delete", err
	}
	names := f["tag"]
	if one := f.Get("one"); one != "" {
		names = []string{one}
	}
	if f.Get("confirm") == "1" {
		// What the preview listed; a tag deleted since is skipped.
		done, err := h.deleteTags(r, c, name, names)
		if err != nil {
			return "", err
		}
		v.Redirect = back + "?deleted=" + strconv.Itoa(len(done))
		return "delete", nil
	}
	tags, err := h.selectTags(r.Context(), name, names, strings.TrimSpace(f.Get("glob")))
	dv.Tags = tags
	return "delete", err
}

// deletedNotice is what a page says after the browser was sent back from
// a delete.
func deletedNotice(r *http.Request) string {
	d := r.URL.Query().Get("deleted")
	if d == "" {
		return ""
	}
	if n, err := strconv.Atoi(d); err == nil {
		if n == 1 {
			return "Deleted 1 tag."
		}
		return "Deleted " + strconv.Itoa(n) + " tags."
	}
	if checkName(d) != nil {
		return ""
	}
	return "Deleted the repository " + d + "."
}
