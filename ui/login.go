package ui

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// maxFormBytes bounds a login or logout form.
const maxFormBytes = 16 << 10

type loginView struct {
	Next string
	User string
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Log in", AuthOn: h.auth != nil, Data: loginView{Next: safeNext(r.URL.Query().Get("next"))}}
	if h.auth == nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	h.render(w, http.StatusOK, "login", v)
}

// safeNext keeps redirects after login on the dashboard.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	return next
}

// sameOrigin refuses a form posted from another site: browsers send
// Origin (and Sec-Fetch-Site) with every POST.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser, or one old enough to omit it: SameSite and the CSRF token still hold
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// login checks a user's password or a robot token, as /v2/ checks Basic
// credentials (same rate limits and failure log), and starts a session.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if h.auth == nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if !sameOrigin(r) || r.ParseForm() != nil {
		registry.WriteError(w, r, apiError(registry.CodeDenied, "cross-site form refused"))
		return
	}
	name, password := r.PostForm.Get("user"), r.PostForm.Get("password")
	lv := loginView{Next: safeNext(r.PostForm.Get("next")), User: name}
	v := &view{Title: "Log in", AuthOn: true, Data: lv}
	check := r.Clone(r.Context())
	check.Header = http.Header{}
	check.SetBasicAuth(name, password)
	id, err := h.auth.Authenticate(check)
	var gen string
	ok := err == nil && (id.Kind == auth.KindUser || id.Kind == auth.KindRobot)
	if ok {
		id, gen, ok = h.auth.Subject(r.Context(), id.Kind, id.Name)
	}
	if !ok {
		// 200, not 401: the form is shown again, and a 401 without a
		// challenge would be an error in the browser's console.
		status, msg := http.StatusOK, "Wrong user name, password or token."
		if e, isAuth := auth.AsError(err); isAuth && e.Status == http.StatusTooManyRequests {
			status, msg = e.Status, "Too many attempts: try again later."
			for k, vs := range e.Header() {
				w.Header()[k] = vs
			}
		}
		v.Error = msg
		h.render(w, status, "login", v)
		return
	}
	http.SetCookie(w, h.sessions.issue(r, id.Kind, id.Name, gen))
	h.log.Info().Str("identity", id.Name).Str("kind", string(id.Kind)).Str("remote", r.RemoteAddr).Msg("dashboard login")
	h.audit.Record(storage.AuditEntry{Kind: storage.AuditLogin, Identity: id.Name, IdentityKind: string(id.Kind), Remote: r.RemoteAddr})
	http.Redirect(w, r, lv.Next, http.StatusSeeOther)
}

// logout ends the session the form was made in.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	se, ok := h.sessions.read(r)
	if !sameOrigin(r) || r.ParseForm() != nil || !ok || !h.sessions.checkCSRF(se, r.PostForm.Get("csrf")) {
		registry.WriteError(w, r, apiError(registry.CodeDenied, "missing or wrong CSRF token"))
		return
	}
	if err := h.sessions.revoke(se); err != nil {
		h.log.Error().Err(err).Msg("dashboard logout")
		registry.WriteError(w, r, err)
		return
	}
	http.SetCookie(w, h.sessions.cookie(r, "", time.Unix(0, 0)))
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
