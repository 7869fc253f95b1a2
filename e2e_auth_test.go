package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// startAuthServer runs the registry with token auth: alice may push and
// pull team/**, bob may only pull it, anonymous callers may pull public/**.
func startAuthServer(t *testing.T) *e2eServer {
	t.Helper()
	alice, _ := bcrypt.GenerateFromPassword([]byte("alice-secret"), bcrypt.MinCost)
	bob, _ := bcrypt.GenerateFromPassword([]byte("bob-secret"), bcrypt.MinCost)
	return startServerWith(t, fmt.Sprintf(`
[auth]
anonymous = ["pull:public/**"]

[[auth.users]]
name = "alice"
password = %q
groups = ["team"]

[[auth.users]]
name = "bob"
password = %q

[[auth.rules]]
groups = ["team"]
permissions = ["*:team/**", "*:public/**"]

[[auth.rules]]
users = ["bob"]
permissions = ["pull:team/**"]
`, alice, bob))
}

func TestE2EAuthBasicAndChallenge(t *testing.T) {
	s := startAuthServer(t)
	for _, tc := range []struct {
		name, user, pw, path string
		want                 int
	}{
		{"anonymous base", "", "", "/v2/", 401},
		{"anonymous private", "", "", "/v2/team/app/tags/list", 401},
		{"anonymous public", "", "", "/v2/public/app/tags/list", 404},
		{"basic base", "alice", "alice-secret", "/v2/", 200},
		{"basic wrong password", "alice", "nope", "/v2/", 401},
		{"bob may not push", "bob", "bob-secret", "/v2/team/app/blobs/uploads/", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if strings.HasSuffix(tc.path, "/uploads/") {
				method = "POST"
			}
			req, _ := http.NewRequest(method, s.url(tc.path), nil)
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pw)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s as %q = %d, want %d", method, tc.path, tc.user, resp.StatusCode, tc.want)
			}
			if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="http://`+s.host()+`/auth/token",service="nora"`) {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestE2EAuthTokenDance pushes and pulls with go-containerregistry, which
// follows the challenge to the token endpoint.
func TestE2EAuthTokenDance(t *testing.T) {
	s := startAuthServer(t)
	img := ociImage(t)
	ref, _ := name.ParseReference(s.host()+"/team/app:v1", name.Insecure)
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})
	if err := remote.Write(ref, img, alice); err != nil {
		t.Fatalf("remote.Write as alice = %v", err)
	}
	bob := remote.WithAuth(&authn.Basic{Username: "bob", Password: "bob-secret"})
	pullWhole(t, ref, img, bob)
	ref2, _ := name.ParseReference(s.host()+"/team/bob:v1", name.Insecure)
	if err := remote.Write(ref2, img, bob); err == nil {
		t.Fatal("remote.Write as bob succeeded, want denied")
	}
	if _, err := remote.Image(ref, remote.WithAuth(authn.Anonymous)); err == nil {
		t.Fatal("anonymous pull of team/app succeeded")
	}
}

func TestE2EAuthClients(t *testing.T) {
	skopeo := needTool(t, "skopeo", installHint)
	podman := needTool(t, "podman", installHint)
	s := startAuthServer(t)
	dir := t.TempDir()
	env, policy := containersConf(t, dir)
	img := ociImage(t)
	src := filepath.Join(dir, "src")
	writeLayout(t, src, img, "v1")

	// skopeo with --creds: push as alice, and bob is refused a push.
	runTool(t, env, skopeo, "--policy", policy, "copy", "--dest-tls-verify=false", "--dest-creds", "alice:alice-secret",
		"oci:"+src+":v1", "docker://"+s.host()+"/team/skopeo:v1")
	runTool(t, env, skopeo, "--policy", policy, "inspect", "--tls-verify=false", "--creds", "bob:bob-secret", "docker://"+s.host()+"/team/skopeo:v1")

	// podman login, then pull what skopeo pushed and push it elsewhere.
	runTool(t, env, podman, "login", "--tls-verify=false", "-u", "alice", "-p", "alice-secret", s.host())
	runTool(t, env, podman, "pull", "--signature-policy", policy, "--tls-verify=false", s.host()+"/team/skopeo:v1")
	runTool(t, env, podman, "tag", s.host()+"/team/skopeo:v1", s.host()+"/team/podman:v1")
	runTool(t, env, podman, "push", "--signature-policy", policy, "--tls-verify=false", s.host()+"/team/podman:v1")
	resp, _ := s.do(t, "HEAD", "/v2/team/podman/manifests/v1", http.Header{"Authorization": {"Basic " + basic("bob", "bob-secret")}}, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("HEAD team/podman:v1 as bob after podman push = %d", resp.StatusCode)
	}
}

func basic(user, pw string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pw))
}

// TestE2EAuthContainerd pulls with ctr --user through the token flow.
func TestE2EAuthContainerd(t *testing.T) {
	containerd, ctr := needContainerd(t)
	s := startAuthServer(t)
	img := ociImage(t)
	ref := s.ref(t, "team/ctr:v1")
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})); err != nil {
		t.Fatalf("remote.Write(%s) = %v", ref, err)
	}
	sock := startContainerd(t, containerd)
	runTool(t, nil, ctr, "--address", sock, "--namespace", "test", "image", "pull", "--plain-http", "--snapshotter", "native",
		"--user", "bob:bob-secret", ref.String())
	if out := runTool(t, nil, ctr, "--address", sock, "--namespace", "test", "image", "ls", "-q"); !strings.Contains(out, ref.String()) {
		t.Errorf("ctr image ls -q = %q, want %s", out, ref)
	}
}
