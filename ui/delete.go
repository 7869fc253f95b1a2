package ui

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"slices"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// Deletes go through storage.Store's own DeleteTag and DeleteManifest, as
// a DELETE on /v2/ does: each is an event that replication and the
// activity record see. GC frees the blobs later.

// TagDeletion is the tags a delete removed or, with DryRun, would remove.
type TagDeletion struct {
	Repository string   `json:"repository"`
	Tags       []string `json:"tags"`
	DryRun     bool     `json:"dryRun,omitempty"`
}

// RepoDeletion is what deleting a repository removed or would remove.
type RepoDeletion struct {
	Repository string `json:"repository"`
	Tags       int    `json:"tags"`
	Manifests  int    `json:"manifests"`
	DryRun     bool   `json:"dryRun,omitempty"`
}

// csrfToken is the token c's forms carry: its session's, or, without a
// session, one bound to the caller's identity (anonymous callers share
// one, which gives another site nothing they could not do themselves).
func (h *Handler) csrfToken(c caller) string {
	if c.session != nil {
		return h.sessions.csrf(c.session)
	}
	return base64.RawURLEncoding.EncodeToString(h.sessions.mac("csrf", "no session", string(c.id.Kind), c.id.Name))
}

// checkMutation refuses a change requested from another site, or without
// the caller's CSRF token (the X-CSRF-Token header or the form field
// csrf). Without a session, an API call that browsers would preflight
// (a DELETE, a JSON POST) needs no token: this server answers no
// cross-origin preflight, so no other site can send it.
func (h *Handler) checkMutation(r *http.Request, c caller, formToken string) error {
	if !sameOrigin(r) {
		return apiError(registry.CodeDenied, "cross-site request refused")
	}
	if c.session == nil && formToken == "" && preflighted(r) {
		return nil
	}
	token := r.Header.Get("X-CSRF-Token")
	if token == "" {
		token = formToken
	}
	if subtle.ConstantTimeCompare([]byte(h.csrfToken(c)), []byte(token)) != 1 {
		return apiError(registry.CodeDenied, "missing or wrong CSRF token")
	}
	return nil
}

// preflighted reports whether a browser would ask before sending r from
// another site.
func preflighted(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return r.Method == http.MethodDelete || (r.Method == http.MethodPost && mt == "application/json")
}

// mayDelete returns nil if c may delete in repo, as on /v2/.
func (c caller) mayDelete(repo string) error {
	return c.may(repo, auth.ActionDelete)
}

// selectTags returns the tags of repo named in names or matching glob, in
// lexical order. A named tag that does not exist is an error.
func (h *Handler) selectTags(ctx context.Context, repo string, names []string, glob string) ([]string, error) {
	if len(names) == 0 && glob == "" {
		return nil, apiError(codeInvalid, "name the tags to delete, or a tag glob")
	}
	match := func(string) bool { return false }
	if glob != "" {
		m, err := auth.RepoGlob(glob)
		if err != nil {
			return nil, apiError(codeInvalid, "invalid glob: "+err.Error())
		}
		match = m
	}
	all, _, err := h.store.Tags(ctx, repo, "", -1)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, found := slices.BinarySearch(all, n); !found {
			return nil, apiError(registry.CodeManifestUnknown, "no tag "+n+" in "+repo)
		}
	}
	out := []string{}
	for _, t := range all {
		if match(t) || slices.Contains(names, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// deleteTags deletes tags from repo and returns those it deleted: a tag
// deleted meanwhile by someone else is left out.
func (h *Handler) deleteTags(r *http.Request, c caller, repo string, tags []string) ([]string, error) {
	done := []string{}
	for _, t := range tags {
		err := h.store.DeleteTag(r.Context(), repo, t)
		if errors.Is(err, storage.ErrManifestNotFound) {
			continue
		}
		if err != nil {
			return done, err
		}
		done = append(done, t)
		h.recordDelete(r, c, repo, t, "tag, from the dashboard")
	}
	h.log.Info().Str("repository", repo).Int("tags", len(done)).Msg("dashboard delete")
	return done, nil
}

// deleteRepository deletes every manifest of repo, with its tags, then
// unlinks the blobs it had, unless dryRun: the repository is gone unless
// a push linked new blobs meanwhile.
func (h *Handler) deleteRepository(req *http.Request, c caller, repo string, dryRun bool) (RepoDeletion, error) {
	ctx := req.Context()
	r, err := h.store.Repository(ctx, repo)
	if err != nil {
		return RepoDeletion{}, err
	}
	out := RepoDeletion{Repository: repo, Tags: len(r.Tags), Manifests: len(r.Manifests), DryRun: dryRun}
	if dryRun {
		return out, nil
	}
	for _, m := range r.Manifests {
		err := h.store.DeleteManifest(ctx, repo, m.Digest)
		if err != nil && !errors.Is(err, storage.ErrManifestNotFound) {
			return out, err
		}
	}
	for _, l := range r.Links {
		err := h.store.DeleteBlob(ctx, repo, l.Digest)
		if err != nil && !errors.Is(err, storage.ErrBlobNotFound) {
			return out, err
		}
	}
	h.log.Info().Str("repository", repo).Int("manifests", out.Manifests).Msg("dashboard delete repository")
	h.recordDelete(req, c, repo, "", "repository, from the dashboard")
	return out, nil
}

// recordDelete adds a delete by c of ref (a tag, or "" for the whole
// repository) of repo to the audit record.
func (h *Handler) recordDelete(r *http.Request, c caller, repo, ref, detail string) {
	h.audit.Record(storage.AuditEntry{Kind: storage.AuditDelete, Identity: c.id.Name, IdentityKind: string(c.id.Kind),
		Repository: repo, Reference: ref, Remote: r.RemoteAddr, Detail: detail})
}
