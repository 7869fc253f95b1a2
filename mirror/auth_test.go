package mirror_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// upstreamUser may push to the token upstream; "mirror" may only pull.
var upstreamUser = &authn.Basic{Username: "admin", Password: "admin-pw"}

// newAuthUpstream is this project's registry with token auth on, as
// Docker Hub, ghcr.io and quay.io do it: a 401 with a Bearer challenge,
// then a token from /auth/token.
func newAuthUpstream(t *testing.T) *upstream {
	t.Helper()
	st, err := storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := auth.DefaultConfig()
	for _, u := range []string{"admin", "mirror"} {
		hash, _ := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		cfg.Users = append(cfg.Users, auth.UserConfig{Name: u, Password: string(hash)})
	}
	cfg.Rules = []auth.RuleConfig{
		{Users: []string{"admin"}, Permissions: []string{"pull:**", "push:**"}},
		{Users: []string{"mirror"}, Permissions: []string{"pull:**"}},
	}
	svc, err := auth.New(cfg, t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(st, registry.WithAuthorizer(svc))
	tokens := svc.TokenHandler()
	return newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/auth/") {
			tokens.ServeHTTP(w, r)
			return
		}
		reg.ServeHTTP(w, r)
	}))
}

// copyAll reads resp's body into w.
func copyAll(w io.Writer, resp *http.Response) (int64, error) { return io.Copy(w, resp.Body) }

// TestRBACSeesLocalName: authorization checks the cache's name, so an
// anonymous pull:docker.io/** covers ?ns=docker.io requests and path
// prefixes, and nothing else.
func TestRBACSeesLocalName(t *testing.T) {
	up := newGGCRUpstream(t)
	img := push(t, up.host+"/library/app:1", 1024, 1)
	cfg := auth.DefaultConfig()
	cfg.Anonymous = []string{"pull:docker.io/**"}
	svc, err := auth.New(cfg, t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv, _, _ := newMirrorWith(t, []registry.Option{registry.WithAuthorizer(svc)}, hub(up))
	tokens := svc.TokenHandler()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/auth/") {
			tokens.ServeHTTP(w, r)
			return
		}
		srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	host := strings.TrimPrefix(front.URL, "http://")
	if got, err := pull(t, host+"/docker.io/library/app:1"); err != nil || got != digestOf(t, img) {
		t.Errorf("anonymous pull of docker.io/library/app = %v, %v; want %v", got, err, digestOf(t, img))
	}
	// The token a containerd client gets for library/app?ns=docker.io
	// is scoped to the name it sends; what matters is that the registry
	// authorizes docker.io/library/app, which anonymous may pull.
	resp, body := get(t, "GET", front.URL+"/v2/library/app/manifests/1?ns=docker.io", "Accept", manifestAccept)
	if resp.StatusCode != 200 {
		t.Errorf("anonymous GET library/app?ns=docker.io = %d %s, want 200", resp.StatusCode, body)
	}
	resp, body = get(t, "GET", front.URL+"/v2/library/app/manifests/1", "Accept", manifestAccept)
	if resp.StatusCode != 401 && resp.StatusCode != 403 {
		t.Errorf("anonymous GET library/app without ns = %d %s, want it refused", resp.StatusCode, body)
	}
}
