package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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

// TestE2EAuthBasicAndChallenge checks the status, challenge and message
// of each refusal, under Basic credentials and under tokens from the token
// endpoint: a message names the action and repository refused, and reads
// the same whether or not the repository exists.
func TestE2EAuthBasicAndChallenge(t *testing.T) {
	s := startAuthServer(t)
	ref, _ := name.ParseReference(s.host()+"/team/app:v1", name.Insecure)
	if err := remote.Write(ref, ociImage(t), remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})); err != nil {
		t.Fatalf("remote.Write as alice = %v", err)
	}
	bobPull := token(t, s, "bob", "bob-secret", "repository:team/bob:pull,push")
	anonPush := token(t, s, "", "", "repository:team/app:push")
	for _, tc := range []struct {
		name, user, pw, bearer, method, path string
		want                                 int
		wantMsg                              string
	}{
		{"anonymous base", "", "", "", "GET", "/v2/", 401, "authentication required"},
		{"anonymous private", "", "", "", "GET", "/v2/team/app/tags/list", 401, "authentication required for pull access to team/app"},
		{"anonymous private, missing", "", "", "", "GET", "/v2/team/nothing/tags/list", 401, "authentication required for pull access to team/nothing"},
		{"anonymous public", "", "", "", "GET", "/v2/public/app/tags/list", 404, "repository name not known to registry: public/app"},
		{"basic base", "alice", "alice-secret", "", "GET", "/v2/", 200, ""},
		{"basic wrong password", "alice", "nope", "", "GET", "/v2/", 401, "invalid username or password"},
		{"bob may not push", "bob", "bob-secret", "", "POST", "/v2/team/app/blobs/uploads/", 403, "no push access to team/app"},
		{"bob may not push, missing", "bob", "bob-secret", "", "POST", "/v2/team/nothing/blobs/uploads/", 403, "no push access to team/nothing"},
		{"bob may not delete", "bob", "bob-secret", "", "DELETE", "/v2/team/app/manifests/v1", 403, "no delete access to team/app"},
		{"bob may not pull elsewhere", "bob", "bob-secret", "", "GET", "/v2/other/app/tags/list", 403, "no pull access to other/app"},
		{"token without push", "", "", bobPull, "POST", "/v2/team/bob/blobs/uploads/", 403, "no push access to team/bob"},
		{"token for another repository", "", "", bobPull, "GET", "/v2/other/app/tags/list", 403, "no pull access to other/app"},
		{"token bob could widen", "", "", bobPull, "GET", "/v2/team/app/tags/list", 401, "authentication required for pull access to team/app"},
		{"anonymous token", "", "", anonPush, "POST", "/v2/team/app/blobs/uploads/", 401, "authentication required for push access to team/app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			switch {
			case tc.bearer != "":
				hdr.Set("Authorization", "Bearer "+tc.bearer)
			case tc.user != "":
				hdr.Set("Authorization", "Basic "+basic(tc.user, tc.pw))
			}
			resp, body := s.do(t, tc.method, tc.path, hdr, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s as %q = %d, want %d", tc.method, tc.path, tc.user, resp.StatusCode, tc.want)
			}
			if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="http://`+s.host()+`/auth/token",service="nora"`) {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tc.wantMsg == "" {
				return
			}
			var e struct {
				Errors []struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Message != tc.wantMsg {
				t.Errorf("%s %s as %q: body %s, want the message %q", tc.method, tc.path, tc.user, body, tc.wantMsg)
			}
		})
	}
}

// token asks the token endpoint for scope, as user (none if empty), and
// returns the token.
func token(t *testing.T, s *e2eServer, user, pw, scope string) string {
	t.Helper()
	hdr := http.Header{}
	if user != "" {
		hdr.Set("Authorization", "Basic "+basic(user, pw))
	}
	resp, body := s.do(t, "GET", "/auth/token?service=nora&scope="+url.QueryEscape(scope), hdr, nil)
	var tok struct{ Token string }
	if err := json.Unmarshal(body, &tok); resp.StatusCode != 200 || err != nil || tok.Token == "" {
		t.Fatalf("GET /auth/token %s as %q = %d %s", scope, user, resp.StatusCode, body)
	}
	return tok.Token
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
