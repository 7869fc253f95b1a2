package main

// End-to-end tests with docker (harness in e2e_dockerd_test.go): it pushes
// to and pulls from the registry with token auth, runs what it pulled,
// and pulls Docker Hub names through the registry as its registry mirror.

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// helloLine is what the test image's entrypoint prints.
const helloLine = "hello from nora"

// helloImage is a one-layer image whose entrypoint, a static Go binary
// built for this machine, prints helloLine.
func helloImage(t *testing.T) v1.Image {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{
		"go.mod":  "module hello\n\ngo 1.21\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(" + strconv.Quote(helloLine) + ") }\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", "hello", ".")
	cmd.Dir, cmd.Env = src, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the test image's binary = %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(src, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg})
	tw.Write(bin)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{
		OS:           "linux",
		Architecture: runtime.GOARCH,
		Config:       v1.Config{Entrypoint: []string{"/hello"}},
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Append(mutate.ConfigMediaType(img, types.OCIConfigJSON), mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "nora e2e"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestE2EDocker drives one dockerd: against the registry with token auth
// (login, push, pull, run, a refused push), and through the registry as
// its registry mirror for Docker Hub names. The mirror is read at daemon
// start, so the cache and its upstream start first.
func TestE2EDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	daemon, cli := needDocker(t)
	img := helloImage(t)
	up := startServer(t)
	if err := remote.Write(up.ref(t, "library/hello:latest"), img); err != nil {
		t.Fatalf("remote.Write(library/hello:latest) = %v", err)
	}
	// revalidate = "0s": every pull of the tag asks upstream, so the pull
	// with the upstream gone shows the cache standing in for it.
	cache := startCache(t, up, "docker.io", "default = true\nrevalidate = \"0s\"")
	d := startDockerd(t, daemon, cli, "http://"+cache.host())

	t.Run("Auth", func(t *testing.T) { testDockerAuth(t, d, img) })
	t.Run("Mirror", func(t *testing.T) { testDockerMirror(t, d, up, cache, img) })
}

// testDockerAuth: docker login, load, push, pull after rmi, run, and a
// push refused to a user who may only pull.
func testDockerAuth(t *testing.T, d *dockerd, img v1.Image) {
	t.Cleanup(func() { d.removeImages(t) })
	s := startAuthServer(t)
	ref := s.host() + "/team/docker:v1"
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
		t.Fatalf("tarball.WriteToFile = %v", err)
	}
	if out := d.run(t, "", "load", "--input", tarPath); !strings.Contains(out, ref) {
		t.Errorf("docker load = %q, want it to name %s", out, ref)
	}
	if out := d.run(t, "alice-secret\n", "login", "--username", "alice", "--password-stdin", s.host()); !strings.Contains(out, "Login Succeeded") {
		t.Errorf("docker login as alice = %q, want Login Succeeded", out)
	}
	out := d.run(t, "", "push", ref)
	// docker stores layers uncompressed and compresses them again on
	// push: compare the digest it reports and the diff ids.
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})
	got := pullWhole(t, s.ref(t, "team/docker:v1"), nil, alice)
	pushed := digestOf(t, got).String()
	if !strings.Contains(out, "digest: "+pushed) {
		t.Errorf("docker push %s = %q, want digest %s as the registry holds it", ref, out, pushed)
	}
	if g, w := diffIDs(t, got), diffIDs(t, img); g != w {
		t.Errorf("diff ids of %s = %s, want %s", ref, g, w)
	}

	d.run(t, "", "rmi", ref)
	if _, _, err := d.try("", "image", "inspect", ref); err == nil {
		t.Fatalf("docker image inspect %s after docker rmi succeeded, want the image gone", ref)
	}
	d.run(t, "", "pull", ref)
	if got := strings.TrimSpace(d.run(t, "", "image", "inspect", "--format", "{{json .RepoDigests}}", ref)); got != fmt.Sprintf("[%q]", s.host()+"/team/docker@"+pushed) {
		t.Errorf("docker image inspect %s: RepoDigests = %s, want [%s/team/docker@%s]", ref, got, s.host(), pushed)
	}
	if got := d.run(t, "", "run", "--rm", "--network", "none", ref); got != helloLine+"\n" {
		t.Errorf("docker run %s = %q, want %q", ref, got, helloLine+"\n")
	}

	d.run(t, "", "logout", s.host())
	out, errs, err := d.try("", "push", ref)
	refused(t, "anonymous docker push "+ref, out, errs, err, "unauthorized: authentication required for push access to team/docker")
	d.run(t, "bob-secret\n", "login", "--username", "bob", "--password-stdin", s.host())
	denied := s.host() + "/team/bob:v1"
	d.run(t, "", "tag", ref, denied)
	out, errs, err = d.try("", "push", denied)
	refused(t, "docker push "+denied+" as bob", out, errs, err, "denied: no push access to team/bob")
	if resp, _ := s.do(t, http.MethodHead, "/v2/team/bob/manifests/v1", http.Header{"Authorization": {"Basic " + basic("alice", "alice-secret")}}, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD team/bob:v1 after bob's refused push = %d, want 404", resp.StatusCode)
	}
}

// refused checks that a docker command exited non-zero with want in its
// standard error, without retrying: docker retries a push for a minute
// after an error it takes for a transient one.
func refused(t *testing.T, what, stdout, stderr string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("%s = %v\nstdout:\n%s\nstderr:\n%s\nwant a non-zero exit and %q", what, err, stdout, stderr, want)
	}
	if strings.Contains(stdout, "Retrying") {
		t.Errorf("%s retried:\n%s\nwant one refusal", what, stdout)
	}
}

// testDockerMirror: docker pulls a Docker Hub short name, which it sends
// to its registry mirror, the cache, whose default upstream holds it;
// then, with the upstream stopped, pulls it again from the cache.
func testDockerMirror(t *testing.T, d *dockerd, up, cache *e2eServer, img v1.Image) {
	want := digestOf(t, img).String()
	pullRun := func(when string) {
		t.Helper()
		d.run(t, "", "pull", "hello")
		if got := strings.TrimSpace(d.run(t, "", "image", "inspect", "--format", "{{json .RepoDigests}}", "hello")); got != fmt.Sprintf("[%q]", "hello@"+want) {
			t.Errorf("%s: docker image inspect hello: RepoDigests = %s, want [hello@%s] as upstream holds it", when, got, want)
		}
		if got := d.run(t, "", "run", "--rm", "--network", "none", "docker.io/library/hello:latest"); got != helloLine+"\n" {
			t.Errorf("%s: docker run hello = %q, want %q", when, got, helloLine+"\n")
		}
		d.run(t, "", "rmi", "hello")
		if ids := d.run(t, "", "images", "--all", "--quiet"); ids != "" {
			t.Fatalf("%s: docker images after docker rmi hello = %q, want none", when, ids)
		}
	}

	pullRun("through the mirror")
	asked := 0
	for _, l := range up.logLines() {
		if l["method"] == "GET" && l["path"] == "/v2/library/hello/manifests/latest" && l["status"] == float64(200) {
			asked++
		}
	}
	if asked == 0 {
		t.Errorf("upstream log has no GET /v2/library/hello/manifests/latest answered 200, want the cache to have fetched it")
	}
	if _, body := cache.do(t, "GET", "/v2/_catalog", nil, nil); !strings.Contains(string(body), `"docker.io/library/hello"`) {
		t.Errorf("cache catalog = %s, want docker.io/library/hello cached", body)
	}

	up.stop()
	pullRun("with the upstream stopped")
}
