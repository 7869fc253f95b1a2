package auth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
)

// aliceAndBob are two users whose passwords are alice-pw and bob-pw.
func aliceAndBob() []auth.UserConfig {
	hash := func(pw string) string {
		h, _ := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		return string(h)
	}
	return []auth.UserConfig{{Name: "alice", Password: hash("alice-pw")}, {Name: "bob", Password: hash("bob-pw")}}
}

// newAuthRegistry serves registry.New with the token service under /auth/,
// as serve does: alice may do anything to team/**, bob may pull it,
// anonymous callers may pull public/**.
func newAuthRegistry(t *testing.T) (*httptest.Server, *auth.Robots) {
	t.Helper()
	store := auth.OpenTestStore(t)
	cfg := auth.DefaultConfig()
	cfg.Users = aliceAndBob()
	cfg.Groups = map[string][]string{"team": {"alice"}}
	cfg.Anonymous = []string{"pull:public/**"}
	cfg.Rules = []auth.RuleConfig{
		{Groups: []string{"team"}, Permissions: []string{"*:team/**", "*:public/**"}},
		{Users: []string{"bob"}, Permissions: []string{"pull:team/**"}},
	}
	robots := auth.NewRobots(store)
	svc, err := auth.New(cfg, t.TempDir(), zerolog.Nop(), auth.WithRobots(robots))
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(store, registry.WithAuthorizer(svc))
	mux := http.NewServeMux()
	mux.Handle("/auth/token", svc.TokenHandler())
	mux.Handle("/", reg)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, robots
}

// TestTokenDanceWithGoContainerRegistry pushes and pulls with
// go-containerregistry's remote package, which follows the 401 challenge to
// the token endpoint and back.
func TestTokenDanceWithGoContainerRegistry(t *testing.T) {
	srv, robots := newAuthRegistry(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	as := func(user, pw string) remote.Option {
		return remote.WithAuth(&authn.Basic{Username: user, Password: pw})
	}
	if err := remote.Write(ref("team/app:v1"), img, as("alice", "alice-pw")); err != nil {
		t.Fatalf("remote.Write(team/app) as alice = %v", err)
	}
	if err := remote.Write(ref("public/base:v1"), img, as("alice", "alice-pw")); err != nil {
		t.Fatalf("remote.Write(public/base) as alice = %v", err)
	}
	want, _ := img.Digest()
	for _, c := range []struct {
		who    string
		ref    string
		opt    remote.Option
		wantOK bool
	}{
		{"bob", "team/app:v1", as("bob", "bob-pw"), true},
		{"anonymous", "public/base:v1", remote.WithAuth(authn.Anonymous), true},
		{"anonymous", "team/app:v1", remote.WithAuth(authn.Anonymous), false},
		{"bob with a wrong password", "team/app:v1", as("bob", "nope"), false},
	} {
		got, err := remote.Image(ref(c.ref), c.opt)
		if err == nil {
			var d any
			if d, err = got.Digest(); err == nil && d != want {
				t.Errorf("remote.Image(%s) as %s = %v, want %v", c.ref, c.who, d, want)
			}
		}
		if (err == nil) != c.wantOK {
			t.Errorf("remote.Image(%s) as %s = %v, want ok %v", c.ref, c.who, err, c.wantOK)
		}
	}
	if err := remote.Write(ref("team/bob:v1"), img, as("bob", "bob-pw")); err == nil {
		t.Error("remote.Write(team/bob) as bob succeeded, want denied")
	}

	// A robot token, as the password of any user name.
	token, err := robots.Create(t.Context(), "ci-bot", []string{"push:team/ci/**", "pull:team/ci/**"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref("team/ci/app:v1"), img, as("ci", token)); err != nil {
		t.Fatalf("remote.Write(team/ci/app) as the robot = %v", err)
	}
	if err := remote.Write(ref("team/app:v2"), img, as("ci", token)); err == nil {
		t.Error("remote.Write(team/app) as the robot succeeded, want denied")
	}
}

// TestBasicStraightToV2 is what curl -u does: Basic credentials on every
// call, no token.
func TestBasicStraightToV2(t *testing.T) {
	srv, _ := newAuthRegistry(t)
	for _, c := range []struct {
		method, path, user, pw string
		want                   int
	}{
		{"GET", "/v2/", "alice", "alice-pw", 200},
		{"GET", "/v2/", "", "", 401},
		{"GET", "/v2/", "alice", "wrong", 401},
		{"GET", "/v2/_catalog", "bob", "bob-pw", 200},
		{"POST", "/v2/team/x/blobs/uploads/", "alice", "alice-pw", 202},
		{"POST", "/v2/team/x/blobs/uploads/", "bob", "bob-pw", 403},
		{"GET", "/v2/team/x/tags/list", "", "", 401},
		{"GET", "/v2/public/x/tags/list", "", "", 404}, // allowed, and empty
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pw)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s as %q = %d, want %d", c.method, c.path, c.user, resp.StatusCode, c.want)
		}
		if c.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="`+srv.URL+`/auth/token",service="nora"`) {
			t.Errorf("%s %s: WWW-Authenticate = %q", c.method, c.path, resp.Header.Get("WWW-Authenticate"))
		}
	}
}
