package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// grantTokenExchange is RFC 8693's grant type.
const grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// OIDCHandler serves POST /auth/oidc/token: an OIDC ID token (form field
// id_token, or "Authorization: Bearer") is exchanged for a registry token
// with the scopes asked (form field scope, space separated).
func (s *Service) OIDCHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if s.oidc == nil {
			// Refused before the body is read: nothing to exchange it for.
			writeTokenError(w, r, &Error{Status: http.StatusNotFound, Message: "no OIDC issuer is configured"})
			return
		}
		limitTokenForm(w, r)
		if err := r.ParseForm(); err != nil {
			writeTokenError(w, r, &Error{Status: http.StatusBadRequest, Message: "malformed form"})
			return
		}
		raw := r.PostForm.Get("id_token")
		if h := r.Header.Get("Authorization"); raw == "" && len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
			raw = strings.TrimSpace(h[7:])
		}
		id, err := s.verifyIDToken(r, "", raw)
		if err != nil {
			if _, limited := overLimit(err); !limited {
				err = &Error{Status: http.StatusUnauthorized, Message: "invalid ID token"}
			}
			writeTokenError(w, r, err)
			return
		}
		s.respond(w, r, id, strings.Fields(r.PostForm.Get("scope")), false)
	})
}

// tokenResponse is the token endpoint's answer (distribution token spec).
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// TokenType and IssuedTokenType are OAuth 2.0's and RFC 8693's.
	TokenType       string `json:"token_type"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// TokenHandler serves the token endpoint, /auth/token: GET with Basic
// credentials (or none, for anonymous access) and repeated scope
// parameters, and POST forms with grant_type password or refresh_token.
// https://distribution.github.io/distribution/spec/auth/token/
func (s *Service) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var (
			id      *Identity
			scopes  []string
			offline bool
			err     error
		)
		switch r.Method {
		case http.MethodGet:
			scopes = r.URL.Query()["scope"]
			offline = r.URL.Query().Get("offline_token") == "true"
			id, err = s.Authenticate(r)
		case http.MethodPost:
			limitTokenForm(w, r)
			id, scopes, offline, err = s.postGrant(r)
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if err != nil {
			writeTokenError(w, r, err)
			return
		}
		if id.Kind == KindToken {
			// A registry token is no credential for more tokens.
			writeTokenError(w, r, &Error{Status: http.StatusUnauthorized, Message: "a registry token cannot request tokens"})
			return
		}
		s.respond(w, r, id, scopes, offline)
	})
}

// maxTokenForm bounds a token request's form: credentials and scopes fit
// in a few KiB, and a client must not make the server buffer megabytes
// before it is known who the client is.
const maxTokenForm = 64 << 10

// limitTokenForm makes reading more than maxTokenForm bytes of r's body
// an error, which ParseForm reports.
func limitTokenForm(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
	}
}

// respond issues a token for id and writes it, with an audit log line.
func (s *Service) respond(w http.ResponseWriter, r *http.Request, id *Identity, scopes []string, offline bool) {
	resp, err := s.issue(id, scopes, offline)
	if err != nil {
		writeTokenError(w, r, err)
		return
	}
	if r.PostForm.Get("grant_type") == grantTokenExchange {
		resp.IssuedTokenType = "urn:ietf:params:oauth:token-type:access_token"
	}
	s.metrics.issued.WithLabelValues(string(id.Kind)).Inc()
	s.auditToken(r, id, scopes)
	s.log.Info().Str("identity", id.Name).Str("kind", string(id.Kind)).Str("remote", r.RemoteAddr).
		Strs("scopes", scopes).Bool("refresh_token", resp.RefreshToken != "").Msg("token issued")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(resp)
}

// postGrant reads an OAuth2 form: grant_type password or refresh_token.
func (s *Service) postGrant(r *http.Request) (*Identity, []string, bool, error) {
	if err := r.ParseForm(); err != nil {
		return nil, nil, false, &Error{Status: http.StatusBadRequest, Message: "malformed form"}
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	offline := r.PostForm.Get("access_type") == "offline"
	switch r.PostForm.Get("grant_type") {
	case "password":
		id, err := s.checkPassword(r, r.PostForm.Get("username"), r.PostForm.Get("password"))
		if e, limited := overLimit(err); limited {
			return nil, nil, false, e
		}
		if err != nil {
			s.failed(r, "bad_credentials", r.PostForm.Get("username"))
			return nil, nil, false, &Error{Status: http.StatusUnauthorized, Message: "invalid username or password"}
		}
		return id, scopes, offline, nil
	case "refresh_token":
		var u *user
		if err := s.attempt(r, "", "", func() bool {
			c, err := s.signer.verify(r.PostForm.Get("refresh_token"), s.cfg.Service, s.cfg.Service+"/refresh")
			if err != nil {
				return false
			}
			// A token of an earlier password, rules or user of the
			// same name is no longer one.
			if cur := s.users[c.Subject]; cur != nil && subtle.ConstantTimeCompare([]byte(c.Generation), []byte(cur.generation)) == 1 {
				u = cur
			}
			return u != nil
		}); err != nil {
			return nil, nil, false, err
		}
		if u == nil {
			s.failed(r, "invalid_refresh_token", "")
			return nil, nil, false, &Error{Status: http.StatusUnauthorized, Message: "invalid refresh token"}
		}
		return s.userIdentity(u), scopes, false, nil
	case grantTokenExchange: // RFC 8693, with an OIDC ID token as the subject
		id, err := s.verifyIDToken(r, "", r.PostForm.Get("subject_token"))
		if e, limited := overLimit(err); limited {
			return nil, nil, false, e
		}
		if err != nil {
			return nil, nil, false, &Error{Status: http.StatusUnauthorized, Message: "invalid subject_token"}
		}
		return id, scopes, false, nil
	}
	return nil, nil, false, &Error{Status: http.StatusBadRequest, Message: "unsupported grant_type"}
}

// issue signs a token granting the intersection of the scopes asked and
// what id may do: a partial grant is not an error. Only repository scopes
// with a valid name and the actions pull, push, delete and `*` (each of
// them that is allowed) are granted, and registry:catalog:* to a user or
// robot (the catalog then lists what they may pull); anything else asked
// is ignored.
func (s *Service) issue(id *Identity, scopes []string, offline bool) (tokenResponse, error) {
	now := time.Now()
	var granted []access
	for _, sc := range scopes {
		typ, name, actions, ok := parseScope(sc)
		if ok && sc == catalogScope && (id.Kind == KindUser || id.Kind == KindRobot) {
			granted = append(granted, access{Type: "registry", Name: "catalog", Actions: []string{"*"}})
			continue
		}
		if !ok || typ != "repository" || !validRepoName(name) {
			continue
		}
		granted = append(granted, access{Type: "repository", Name: name, Actions: grantedActions(id.Grants, name, actions)})
	}
	subject := id.Name
	tok, err := s.signer.sign(claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.cfg.Service, Subject: subject, Audience: jwt.ClaimStrings{s.cfg.Service},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.lifetime)), ID: randomID(),
		},
		Access: granted,
		Kind:   id.Kind,
	})
	if err != nil {
		return tokenResponse{}, err
	}
	resp := tokenResponse{Token: tok, AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.lifetime / time.Second), IssuedAt: now.UTC().Format(time.RFC3339)}
	if u := s.users[id.Name]; offline && id.Kind == KindUser && u != nil {
		resp.RefreshToken, err = s.signer.sign(claims{RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.cfg.Service, Subject: subject, Audience: jwt.ClaimStrings{s.cfg.Service + "/refresh"},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(s.refresh)), ID: randomID(),
		}, Generation: u.generation})
	}
	return resp, err
}

// grantedActions returns the actions asked on repo that g allows, each
// once; `*` asks for every action.
func grantedActions(g Grants, repo string, asked []string) []string {
	allowed := []string{}
	for _, a := range asked {
		each := []Action{Action(a)}
		if a == string(ActionAll) {
			each = []Action{ActionPull, ActionPush, ActionDelete}
		}
		for _, act := range each {
			if validAction(act) && g != nil && g.Allows(repo, act) && !slices.Contains(allowed, string(act)) {
				allowed = append(allowed, string(act))
			}
		}
	}
	return allowed
}

// repoName is the distribution spec's repository name: path components of
// lowercase alphanumerics joined by '.', '_', '__' or dashes.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
var repoName = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// validRepoName reports whether name is a repository name the registry
// serves, so a token never names "a/../b" or other paths it would not.
func validRepoName(name string) bool {
	return len(name) <= 255 && repoName.MatchString(name)
}

// catalogScope asks for a token with which the catalog lists every
// repository the caller may pull, as clients ask before GET /v2/_catalog.
const catalogScope = "registry:catalog:*"

// parseScope splits "repository:name:pull,push". The name may itself hold
// a colon (a "host:port/" prefix), so type is cut at the first colon and
// actions at the last.
func parseScope(s string) (typ, name string, actions []string, ok bool) {
	i, j := strings.IndexByte(s, ':'), strings.LastIndexByte(s, ':')
	if i < 0 || j <= i+1 {
		return "", "", nil, false
	}
	return s[:i], s[i+1 : j], strings.Split(s[j+1:], ","), true
}

func randomID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeTokenError writes err in the registry's error format; a 429 is
// TOOMANYREQUESTS with Retry-After, as the API's limits answer.
func writeTokenError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := AsError(err)
	if ok && e.Status == http.StatusTooManyRequests {
		WriteRateLimited(w, r, e)
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	if ok {
		status, msg = e.Status, e.Message
		for k, v := range e.Header() {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": msg}}})
}
