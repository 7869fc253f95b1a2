package ui

import (
	"net/http"

	"github.com/nora-registry/nora/registry"
)

// apiHandler is the shape of every API handler: it writes a result or
// returns an error that api turns into the error envelope.
type apiHandler func(w http.ResponseWriter, r *http.Request, c caller) error

func (h *Handler) api(fn apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := h.identify(r)
		if err == nil {
			registry.NoteIdentity(w, c.id)
			err = fn(w, r, c)
		}
		if err != nil {
			h.logError(r, err)
			registry.WriteError(w, r, err)
		}
	}
}

func (h *Handler) logError(r *http.Request, err error) {
	if registry.AsError(err).Code == registry.CodeUnknown {
		h.log.Error().Err(err).Str("path", r.URL.Path).Msg("dashboard")
	}
}

func apiNotFound(w http.ResponseWriter, r *http.Request, _ caller) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return apiError(registry.CodeUnsupported, "no such API path for "+r.Method)
	}
	return apiError(registry.CodeNotFound, "no such API path")
}

// GET /api/v1/overview
func (h *Handler) apiOverview(w http.ResponseWriter, r *http.Request, c caller) error {
	o, err := h.overview(r.Context(), c)
	if err != nil {
		return err
	}
	writeJSON(w, o)
	return nil
}

// GET /api/v1/repositories?q=&n=&last=
func (h *Handler) apiRepositories(w http.ResponseWriter, r *http.Request, c caller) error {
	l, err := h.listRepositories(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, l)
	return nil
}

// GET /api/v1/repositories/{name}/tags?n=&last= and
// GET /api/v1/repositories/{name}/manifests/{digest}
func (h *Handler) apiRepository(w http.ResponseWriter, r *http.Request, c caller) error {
	rp, err := parseRepoPath(r.PathValue("path"))
	if err != nil {
		return err
	}
	if rp.suffix == "" {
		return apiError(registry.CodeNotFound, "no such API path: want …/tags or …/manifests/<digest>")
	}
	if err := c.mayPull(rp.name); err != nil {
		return err
	}
	if rp.suffix == "manifests" {
		m, err := h.manifest(r.Context(), rp.name, rp.digest)
		if err != nil {
			return err
		}
		writeJSON(w, m)
		return nil
	}
	n, last, err := pageArgs(r)
	if err != nil {
		return err
	}
	l, err := h.tags(r.Context(), rp.name, last, n)
	if err != nil {
		return err
	}
	writeJSON(w, l)
	return nil
}
