package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nora-registry/nora/storage"
)

// robotTokenPrefix marks robot tokens, so they are told from passwords
// without a lookup and secret scanners can recognise leaked ones.
const robotTokenPrefix = "nora_rbt_"

var robotName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// RobotStore keeps robot tokens by the hash of their secret;
// *storage.Store is one.
type RobotStore interface {
	CreateRobot(ctx context.Context, r storage.Robot) error
	DeleteRobot(ctx context.Context, name string) error
	Robots(ctx context.Context) ([]storage.Robot, error)
	RobotByHash(ctx context.Context, hash []byte) (storage.Robot, error)
}

// RobotInfo describes a robot token without its secret.
type RobotInfo struct {
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"` // zero: never
}

// RobotAdmin creates, lists and revokes robot tokens: *Robots does it on the
// store, *AdminClient asks the running server to.
type RobotAdmin interface {
	// Create stores a new robot token and returns its secret, which is
	// shown once and never stored. ttl 0 means it never expires.
	Create(ctx context.Context, name string, perms []string, ttl time.Duration) (string, error)
	List(ctx context.Context) ([]RobotInfo, error)
	// Revoke deletes the robot token name; storage.ErrRobotNotFound if
	// there is none.
	Revoke(ctx context.Context, name string) error
}

// Robots manages robot tokens in a RobotStore.
type Robots struct {
	store RobotStore

	mu       sync.Mutex
	onRevoke []*func()
	timeNow  func() time.Time
	randRead func([]byte) (int, error)
}

// NewRobots manages the robot tokens of store.
func NewRobots(store RobotStore) *Robots {
	return &Robots{store: store, timeNow: time.Now, randRead: rand.Read}
}

// Create implements RobotAdmin.
func (r *Robots) Create(ctx context.Context, name string, perms []string, ttl time.Duration) (string, error) {
	if !robotName.MatchString(name) {
		return "", fmt.Errorf("robot name %q: want 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", name)
	}
	if _, err := ParsePermissions(perms); err != nil {
		return "", err
	}
	if ttl < 0 {
		return "", fmt.Errorf("robot %q: negative lifetime %s", name, ttl)
	}
	var secret [32]byte
	if _, err := r.randRead(secret[:]); err != nil {
		return "", err
	}
	token := robotTokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(token))
	now := r.timeNow().UTC()
	rec := storage.Robot{Name: name, Hash: sum[:], Permissions: perms, Created: now}
	if ttl > 0 {
		rec.Expires = now.Add(ttl)
	}
	if err := r.store.CreateRobot(ctx, rec); err != nil {
		return "", err
	}
	return token, nil
}

// List implements RobotAdmin.
func (r *Robots) List(ctx context.Context) ([]RobotInfo, error) {
	robots, err := r.store.Robots(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RobotInfo, len(robots))
	for i, rb := range robots {
		out[i] = RobotInfo{Name: rb.Name, Permissions: rb.Permissions, Created: rb.Created, Expires: rb.Expires}
	}
	return out, nil
}

// Revoke implements RobotAdmin. Identities cached from the revoked token
// are dropped at once; registry tokens issued to it before expire within
// their lifetime.
func (r *Robots) Revoke(ctx context.Context, name string) error {
	if err := r.store.DeleteRobot(ctx, name); err != nil {
		return err
	}
	r.mu.Lock()
	hooks := append([]*func(){}, r.onRevoke...)
	r.mu.Unlock()
	for _, f := range hooks {
		(*f)()
	}
	return nil
}

// OnRevoke registers f to run after each revocation, until stop is
// called.
func (r *Robots) OnRevoke(f func()) (stop func()) {
	p := &f
	r.mu.Lock()
	r.onRevoke = append(r.onRevoke, p)
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.onRevoke = slices.DeleteFunc(r.onRevoke, func(q *func()) bool { return q == p })
	}
}

// lookup returns the live robot whose secret is token.
func (r *Robots) lookup(ctx context.Context, token string) (storage.Robot, bool) {
	if !strings.HasPrefix(token, robotTokenPrefix) {
		return storage.Robot{}, false
	}
	sum := sha256.Sum256([]byte(token))
	rb, err := r.store.RobotByHash(ctx, sum[:])
	if err != nil || (!rb.Expires.IsZero() && !r.timeNow().Before(rb.Expires)) {
		return storage.Robot{}, false
	}
	return rb, true
}

// byName returns the live robot token name.
func (r *Robots) byName(ctx context.Context, name string) (storage.Robot, bool) {
	robots, err := r.store.Robots(ctx)
	if err != nil {
		return storage.Robot{}, false
	}
	for _, rb := range robots {
		if rb.Name == name {
			return rb, rb.Expires.IsZero() || r.timeNow().Before(rb.Expires)
		}
	}
	return storage.Robot{}, false
}

// AdminSocket is the name of the unix socket, in the data directory, on
// which serve answers robot token commands: bbolt lets one process open
// the store, so the CLI asks the server while it runs.
const AdminSocket = "admin.sock"

// ListenAdmin listens on the unix socket path, readable and writable by
// the owner only. A socket file left by a crashed server is replaced; the
// caller already holds the store, so no live server owns it.
func ListenAdmin(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

type createRobotRequest struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	TTL         string   `json:"ttl"` // a Go duration; "" or "0s": never expires
}

// AdminHandler serves robot token commands on the admin socket:
// GET /robots, POST /robots, DELETE /robots/{name}. Only the socket's
// owner can reach it, so it asks for no credentials.
func (r *Robots) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /robots", func(w http.ResponseWriter, req *http.Request) {
		list, err := r.List(req.Context())
		writeAdmin(w, list, err)
	})
	mux.HandleFunc("POST /robots", func(w http.ResponseWriter, req *http.Request) {
		var c createRobotRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<16)).Decode(&c); err != nil {
			writeAdmin(w, nil, fmt.Errorf("malformed request: %w", err))
			return
		}
		var ttl time.Duration
		if c.TTL != "" {
			var err error
			if ttl, err = storage.ParseDuration(c.TTL); err != nil {
				writeAdmin(w, nil, err)
				return
			}
		}
		token, err := r.Create(req.Context(), c.Name, c.Permissions, ttl)
		writeAdmin(w, map[string]string{"token": token}, err)
	})
	mux.HandleFunc("DELETE /robots/{name}", func(w http.ResponseWriter, req *http.Request) {
		writeAdmin(w, map[string]string{}, r.Revoke(req.Context(), req.PathValue("name")))
	})
	return mux
}

func writeAdmin(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, storage.ErrRobotNotFound):
			status = http.StatusNotFound
		case errors.Is(err, storage.ErrRobotExists):
			status = http.StatusConflict
		}
		w.WriteHeader(status)
		v = map[string]string{"error": err.Error()}
	}
	json.NewEncoder(w).Encode(v)
}

// AdminClient sends robot token commands to a running server's admin
// socket.
type AdminClient struct {
	http *http.Client
}

// DialAdmin connects to the admin socket at path. It fails when no server
// listens there (no socket file, or a stale one).
func DialAdmin(path string) (*AdminClient, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	conn.Close()
	var d net.Dialer
	return &AdminClient{http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}},
	}}, nil
}

// Create implements RobotAdmin.
func (c *AdminClient) Create(ctx context.Context, name string, perms []string, ttl time.Duration) (string, error) {
	body, _ := json.Marshal(createRobotRequest{Name: name, Permissions: perms, TTL: ttl.String()})
	var out map[string]string
	err := c.do(ctx, http.MethodPost, "/robots", body, &out)
	return out["token"], err
}

// List implements RobotAdmin.
func (c *AdminClient) List(ctx context.Context) ([]RobotInfo, error) {
	var out []RobotInfo
	err := c.do(ctx, http.MethodGet, "/robots", nil, &out)
	return out, err
}

// Revoke implements RobotAdmin.
func (c *AdminClient) Revoke(ctx context.Context, name string) error {
	if !robotName.MatchString(name) {
		return fmt.Errorf("robot %q: %w", name, storage.ErrRobotNotFound)
	}
	return c.do(ctx, http.MethodDelete, "/robots/"+name, nil, nil)
}

func (c *AdminClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://nora-admin"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		switch resp.StatusCode {
		case http.StatusNotFound:
			return adminError{e.Error, storage.ErrRobotNotFound}
		case http.StatusConflict:
			return adminError{e.Error, storage.ErrRobotExists}
		}
		return errors.New(e.Error)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// adminError is a server's error message that still matches its sentinel
// with errors.Is.
type adminError struct {
	msg      string
	sentinel error
}

func (e adminError) Error() string { return e.msg }
func (e adminError) Unwrap() error { return e.sentinel }
