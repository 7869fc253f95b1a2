package ui

import (
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// auditScan is the most audit entries one activity page reads: a filter
// that matches little gets a short page and a link to older entries
// rather than a read of the whole record.
const auditScan = 10_000

// auditKinds are the kinds an activity filter may name.
var auditKinds = []storage.AuditKind{storage.AuditPush, storage.AuditDelete, storage.AuditLogin,
	storage.AuditToken, storage.AuditFailed, storage.AuditDenied}

// Activity is a page of the audit record, newest first, with the filters
// that chose it.
type Activity struct {
	Kind       string               `json:"kind,omitempty"`
	Repository string               `json:"repository,omitempty"`
	Identity   string               `json:"identity,omitempty"`
	Kinds      []storage.AuditKind  `json:"-"`
	Entries    []storage.AuditEntry `json:"entries"`
	// Next is the `before` of the next page, 0 on the last page.
	Next uint64 `json:"next,omitempty"`
}

// seesEntry reports whether c may see e: with auth off, everyone sees
// everything; with it on, an entry about a repository is seen by whoever
// may pull it, and one about no repository (logins, tokens, refused
// credentials) only by its own identity.
func (h *Handler) seesEntry(c caller, e *storage.AuditEntry) bool {
	if h.auth == nil || c.isAdmin() {
		return true
	}
	if e.Repository != "" {
		return c.id.Grants != nil && c.id.Grants.Allows(e.Repository, auth.ActionPull)
	}
	return c.loggedIn() && e.Identity == c.id.Name && e.IdentityKind == string(c.id.Kind)
}

// activity reads ?kind=, ?repository= (a name, substring or glob),
// ?identity=, ?before= and ?n=, and returns the entries c may see.
func (h *Handler) activity(ctx context.Context, r *http.Request, c caller) (Activity, error) {
	q := r.URL.Query()
	a := Activity{Kind: q.Get("kind"), Repository: q.Get("repository"), Identity: q.Get("identity"), Kinds: auditKinds, Entries: []storage.AuditEntry{}}
	n, _, err := pageArgs(r)
	if err != nil {
		return a, err
	}
	var before uint64
	if s := q.Get("before"); s != "" {
		if before, err = strconv.ParseUint(s, 10, 64); err != nil {
			return a, apiError(registry.CodePaginationInvalid, "before must be an entry's seq")
		}
	}
	if a.Kind != "" && !slices.Contains(auditKinds, storage.AuditKind(a.Kind)) {
		return a, apiError(codeInvalid, "unknown kind "+strconv.Quote(a.Kind))
	}
	repo, err := matcher(a.Repository)
	if err != nil {
		return a, err
	}
	p, err := h.store.ListAudit(ctx, storage.AuditQuery{Before: before, Limit: n, MaxScan: auditScan, Match: func(e *storage.AuditEntry) bool {
		return (a.Kind == "" || string(e.Kind) == a.Kind) &&
			(a.Identity == "" || e.Identity == a.Identity) &&
			(a.Repository == "" || repo(e.Repository)) &&
			h.seesEntry(c, e)
	}})
	if err != nil {
		return a, err
	}
	if len(p.Entries) > 0 {
		a.Entries = p.Entries
	}
	a.Next = p.Next
	return a, nil
}

func (h *Handler) activityPage(r *http.Request, c caller, v *view) (string, error) {
	a, err := h.activity(r.Context(), r, c)
	v.Title, v.Data = "Activity", a
	if e, ok := err.(*registry.Error); ok && e.Code == codeInvalid {
		v.Error, err = e.Message, nil // shown above the empty feed
	}
	return "activity", err
}

// GET /api/v1/activity?kind=&repository=&identity=&before=&n=
func (h *Handler) apiActivity(w http.ResponseWriter, r *http.Request, c caller) error {
	a, err := h.activity(r.Context(), r, c)
	if err != nil {
		return err
	}
	writeJSON(w, a)
	return nil
}
