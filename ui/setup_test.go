package ui

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
)

// fixture is a store with content pushed by a real client through the
// registry, and the dashboard over it with auth on and off.
type fixture struct {
	dir    string
	store  *storage.Store
	cfg    auth.Config
	svc    *auth.Service
	robots *auth.Robots
	open   *httptest.Server // auth off
	authed *httptest.Server // auth on
	image  v1.Hash          // team/app:v1
	index  v1.Hash          // team/app:multi
	sig    v1.Hash          // a referrer of image
}

// authConfig: alice pulls team/**, bob pulls other/**, everyone pulls
// public/**.
func authConfig(t testing.TB, alicePassword string) auth.Config {
	t.Helper()
	h := func(pw string) string {
		b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cfg := auth.DefaultConfig()
	cfg.Users = []auth.UserConfig{{Name: "alice", Password: h(alicePassword)}, {Name: "bob", Password: h("bob-pw")}}
	cfg.Anonymous = []string{"pull:public/**"}
	cfg.Rules = []auth.RuleConfig{
		{Users: []string{"alice"}, Permissions: []string{"pull:team/**"}},
		{Users: []string{"bob"}, Permissions: []string{"pull:other/**"}},
	}
	return cfg
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	var err error
	if f.store, err = storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: f.dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	f.robots = auth.NewRobots(f.store)
	f.cfg = authConfig(t, "alice-pw")
	if f.svc, err = auth.New(f.cfg, f.dir, zerolog.Nop(), auth.WithRobots(f.robots)); err != nil {
		t.Fatal(err)
	}
	f.push(t)
	f.open = httptest.NewServer(f.dashboard(t))
	t.Cleanup(f.open.Close)
	f.authed = httptest.NewServer(f.dashboard(t, WithAuth(f.svc)))
	t.Cleanup(f.authed.Close)
	return f
}

func (f *fixture) dashboard(t *testing.T, opts ...Option) http.Handler {
	t.Helper()
	h, err := New(DefaultConfig(), f.store, f.dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// push writes an image, an index of two platforms and a signature-like
// referrer with go-containerregistry through the registry API.
func (f *fixture) push(t *testing.T) {
	t.Helper()
	reg := httptest.NewServer(registry.New(f.store))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	img, _ := random.Image(512, 2)
	img, _ = mutate.Config(img, v1.Config{Entrypoint: []string{"/app"}, Env: []string{"MODE=test"}, Labels: map[string]string{"org.opencontainers.image.title": "app"}})
	must(t, remote.Write(ref("team/app:v1"), img))
	f.image, _ = img.Digest()
	arm, _ := random.Image(256, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	must(t, remote.WriteIndex(ref("team/app:multi"), idx))
	f.index, _ = idx.Digest()
	size, _ := img.Size()
	sig, _ := random.Image(64, 1)
	sig = mutate.ConfigMediaType(sig, "application/vnd.dev.cosign.artifact.sig.v1+json")
	sig = mutate.Subject(sig, v1.Descriptor{MediaType: types.DockerManifestSchema2, Digest: f.image, Size: size}).(v1.Image)
	f.sig, _ = sig.Digest()
	must(t, remote.Write(ref("team/app@"+f.sig.String()), sig))
	for _, r := range []string{"other/tool:1", "public/base:1"} {
		im, _ := random.Image(64, 1)
		must(t, remote.Write(ref(r), im))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// login posts the login form and returns the session cookie, or nil.
func login(t *testing.T, base, user, password string) (*http.Response, *http.Cookie) {
	t.Helper()
	resp := postForm(t, base+"/ui/login", nil, url.Values{"user": {user}, "password": {password}, "next": {"/ui/repositories"}}, nil)
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName {
			return resp, ck
		}
	}
	return resp, nil
}

// postForm posts form to u with the cookie and headers given.
func postForm(t *testing.T, u string, ck *http.Cookie, form url.Values, header map[string]string) *http.Response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range header {
		h[k] = v
	}
	resp, _ := send(t, "POST", u, ck, strings.NewReader(form.Encode()), h)
	return resp
}

// send makes a request without following redirects and returns the
// response with its body read.
func send(t *testing.T, method, u string, ck *http.Cookie, body io.Reader, header map[string]string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(method, u, body)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if ck != nil {
		req.AddCookie(ck)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}
