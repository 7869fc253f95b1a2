package ui

import (
	"encoding/json"
	"net/http"
	"strings"
)

// maxDeleteBody bounds a bulk delete's JSON body.
const maxDeleteBody = 1 << 20

// DELETE /api/v1/repositories/{name}/tags/{tag} deletes one tag;
// DELETE /api/v1/repositories/{name}[?dryRun=true] deletes the repository.
func (h *Handler) apiDelete(w http.ResponseWriter, r *http.Request, c caller) error {
	p := r.PathValue("path")
	name, tag := p, ""
	if i := strings.LastIndex(p, "/tags/"); i >= 0 {
		name, tag = p[:i], p[i+len("/tags/"):]
	}
	if err := h.deletable(r, c, name, ""); err != nil {
		return err
	}
	if tag == "" {
		d, err := h.deleteRepository(r, c, name, r.URL.Query().Get("dryRun") == "true")
		if err != nil {
			return err
		}
		writeJSON(w, d)
		return nil
	}
	return h.writeTagDeletion(w, r, c, name, []string{tag}, "", false)
}

// POST /api/v1/repositories/{name}/tags/delete with
// {"tags":[…]} or {"glob":"v1.*"}, and "dryRun":true for a preview.
func (h *Handler) apiDeleteTags(w http.ResponseWriter, r *http.Request, c caller) error {
	name, ok := strings.CutSuffix(r.PathValue("path"), "/tags/delete")
	if !ok {
		return apiNotFound(w, r, c)
	}
	var req struct {
		Tags   []string `json:"tags"`
		Glob   string   `json:"glob"`
		DryRun bool     `json:"dryRun"`
	}
	if err := h.deletable(r, c, name, ""); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDeleteBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return apiError(codeInvalid, "want a JSON body {\"tags\":[…]} or {\"glob\":\"…\"}: "+err.Error())
	}
	return h.writeTagDeletion(w, r, c, name, req.Tags, req.Glob, req.DryRun)
}

// writeTagDeletion deletes, or with dryRun lists, the tags of repo named
// or matching glob, and writes what it did.
func (h *Handler) writeTagDeletion(w http.ResponseWriter, r *http.Request, c caller, repo string, names []string, glob string, dryRun bool) error {
	tags, err := h.selectTags(r.Context(), repo, names, glob)
	if err == nil && !dryRun {
		tags, err = h.deleteTags(r, c, repo, tags)
	}
	if err != nil {
		return err
	}
	writeJSON(w, TagDeletion{Repository: repo, Tags: tags, DryRun: dryRun})
	return nil
}

// deletable checks a delete in repo: a valid name, a same-site request
// with its CSRF token, pull (to see it) and delete permission.
func (h *Handler) deletable(r *http.Request, c caller, repo, formToken string) error {
	if err := checkName(repo); err != nil {
		return err
	}
	if err := h.checkMutation(r, c, formToken); err != nil {
		return err
	}
	if err := c.mayPull(repo); err != nil {
		return err
	}
	return c.mayDelete(repo)
}
