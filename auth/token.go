package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nora-registry/nora/storage"
)

// access is one entry of a token's access claim (distribution token spec).
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// claims are a registry token's claims. Refresh tokens carry no access and
// a distinct audience, so one can never be used as the other.
type claims struct {
	jwt.RegisteredClaims
	Access []access `json:"access,omitempty"`
	// Kind is the kind of identity the token was issued to, so a call
	// outside its access can be told "get another token" (401) or "you
	// may not" (403).
	Kind Kind `json:"kind,omitempty"`
	// Generation binds a refresh token to its user's credentials and
	// rights when it was issued (user.generation): a password change,
	// the user's removal or a change of their rules ends it.
	Generation string `json:"gen,omitempty"`
}

// tokenGrants is what a bearer token allows: its access claim and what
// anonymous callers may do, never more.
type tokenGrants struct {
	access    []access
	kind      Kind // of the identity the token was issued to
	anonymous *Permissions
}

// Allows implements Grants.
func (g tokenGrants) Allows(repo string, action Action) bool {
	if g.anonymous.Allows(repo, action) {
		return true
	}
	for _, a := range g.access {
		if a.Type == "repository" && a.Name == repo && (slices.Contains(a.Actions, string(action)) || slices.Contains(a.Actions, "*")) {
			return true
		}
	}
	return false
}

// listGrants are a user's grants for what a token's catalog lists,
// without the admin permission a token never carries.
type listGrants struct{ Grants }

// signer holds the registry's ES256 key, generated on first start and kept
// in the data directory, readable by the owner only.
type signer struct {
	key *ecdsa.PrivateKey
	kid string
}

func loadSigner(dir string) (*signer, error) {
	path := filepath.Join(dir, "token.key")
	data, err := os.ReadFile(path)
	var key *ecdsa.PrivateKey
	switch {
	case err == nil && len(data) > 0:
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: not a PEM key", path)
		}
		if key, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist), err == nil:
		// Missing, or empty: a release that wrote the key without syncing
		// it could leave it so after a power cut, and no token it signed
		// outlived it.
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
		der, _ := x509.MarshalECPrivateKey(key)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		if err := storage.WriteFileDurable(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	sum := sha256.Sum256(pub)
	return &signer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:12])}, nil
}

// mac returns a short keyed hash of parts, under a key derived from the
// signing key: stable across restarts, meaningless without the key.
func (s *signer) mac(parts ...string) string {
	d := s.key.D.Bytes()
	m := hmac.New(sha256.New, append([]byte("nora-mac\x00"), d...))
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

func (s *signer) sign(c claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// verify checks everything a token claims: ES256 and our key id only,
// issuer, audience, expiry and not-before with a little clock leeway.
func (s *signer) verify(raw, issuer, audience string) (*claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.kid {
			return nil, errors.New("unknown key id")
		}
		return &s.key.PublicKey, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(10*time.Second),
	)
	if err != nil {
		return nil, err
	}
	return &c, nil
}
