package ui

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

// cookieName is the session cookie.
const cookieName = "nora_session"

// session is what the cookie carries, signed: who logged in, the
// generation of their credentials then, when it ends, and a random id that
// logging out revokes.
type session struct {
	Kind    auth.Kind `json:"k"`
	Name    string    `json:"n"`
	Gen     string    `json:"g"`
	Expires int64     `json:"e"`
	ID      string    `json:"i"`
	// raw is the signed payload, for the CSRF token.
	raw string
}

// sessions signs and checks session cookies with an HMAC key kept in the
// data directory (ui.key, owner-only), and remembers logged-out sessions
// until they expire (ui.logout), so neither a restart nor a copied cookie
// brings one back.
type sessions struct {
	key      []byte
	lifetime time.Duration
	logout   string // path of the revocation file

	mu      sync.Mutex
	revoked map[string]int64 // session id → expiry
}

func openSessions(dir string, lifetime time.Duration) (*sessions, error) {
	key, err := loadKey(filepath.Join(dir, "ui.key"))
	if err != nil {
		return nil, err
	}
	s := &sessions{key: key, lifetime: lifetime, logout: filepath.Join(dir, "ui.logout"), revoked: map[string]int64{}}
	return s, s.loadRevoked()
}

func loadKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	switch {
	case err == nil && len(key) == 32:
		return key, nil
	case err == nil && len(key) > 0:
		return nil, fmt.Errorf("%s: want 32 bytes, found %d", path, len(key))
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	// Missing, or empty: a release before the key was written durably
	// could leave it so after a power cut, and no session could have
	// outlived that key.
	key = make([]byte, 32)
	rand.Read(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if err := storage.WriteFileDurable(path, key, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

func (s *sessions) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// issue returns a cookie for a new session of kind and name.
func (s *sessions) issue(r *http.Request, kind auth.Kind, name, gen string) *http.Cookie {
	id := make([]byte, 16)
	rand.Read(id)
	exp := time.Now().Add(s.lifetime)
	payload, _ := json.Marshal(session{Kind: kind, Name: name, Gen: gen, Expires: exp.Unix(), ID: base64.RawURLEncoding.EncodeToString(id)})
	p := base64.RawURLEncoding.EncodeToString(payload)
	v := p + "." + base64.RawURLEncoding.EncodeToString(s.mac("session", p))
	return s.cookie(r, v, exp)
}

func (s *sessions) cookie(r *http.Request, value string, exp time.Time) *http.Cookie {
	c := &http.Cookie{
		Name: cookieName, Value: value, Path: "/", Expires: exp,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	}
	if value == "" {
		c.MaxAge = -1
	}
	return c
}

// read returns the request's session if its cookie is well signed,
// unexpired and not logged out.
func (s *sessions) read(r *http.Request) (*session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil, false
	}
	p, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac("session", p)) {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, false
	}
	var se session
	if json.Unmarshal(payload, &se) != nil || time.Now().Unix() >= se.Expires || se.ID == "" {
		return nil, false
	}
	s.mu.Lock()
	_, gone := s.revoked[se.ID]
	s.mu.Unlock()
	if gone {
		return nil, false
	}
	se.raw = p
	return &se, true
}

// csrf is the token a session's forms carry: a mutation is accepted only
// with the token of the session it is made in.
func (s *sessions) csrf(se *session) string {
	if se == nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", se.raw))
}

func (s *sessions) checkCSRF(se *session, token string) bool {
	want := s.csrf(se)
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

// revoke ends se: its id is kept, on disk too, until it would have
// expired anyway.
func (s *sessions) revoke(se *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[se.ID] = se.Expires
	now := time.Now().Unix()
	var b strings.Builder
	for id, exp := range s.revoked {
		if exp <= now {
			delete(s.revoked, id)
			continue
		}
		fmt.Fprintf(&b, "%s %d\n", id, exp)
	}
	// A logout survives a power cut: the session stays revoked.
	return storage.WriteFileDurable(s.logout, []byte(b.String()), 0o600)
}

func (s *sessions) loadRevoked() error {
	f, err := os.Open(s.logout)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	now := time.Now().Unix()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, e, _ := strings.Cut(sc.Text(), " ")
		if exp, err := strconv.ParseInt(e, 10, 64); err == nil && exp > now {
			s.revoked[id] = exp
		}
	}
	return sc.Err()
}
