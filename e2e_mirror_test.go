package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// startCache starts a registry that caches up, answering for host, with
// extra keys in its [[mirror.upstreams]] entry.
func startCache(t *testing.T, up interface{ host() string }, host, extra string) *e2eServer {
	t.Helper()
	return startServerWith(t, fmt.Sprintf(`
[[mirror.upstreams]]
name = "upstream"
url = "http://%s"
insecure = true
hosts = [%q]
%s
`, up.host(), host, extra))
}

// TestE2EMirror runs the registry as a pull-through cache of another
// registry process with token auth on: go-containerregistry and crane
// pull through the host prefix, a containerd-style ?ns= request resolves
// the tag, and once the upstream is stopped and the cache restarted, the
// same pulls still work from the cache (stale: revalidate is 0s).
func TestE2EMirror(t *testing.T) {
	up := startAuthServer(t)
	img := ociImage(t)
	want := digestOf(t, img).String()
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})
	if err := remote.Write(up.ref(t, "team/app:v1"), img, alice); err != nil {
		t.Fatal(err)
	}
	cache := startCache(t, up, "registry.example", `username = "bob"
password = "bob-secret"
revalidate = "0s"`)

	pullWhole(t, cache.ref(t, "registry.example/team/app:v1"), img)
	_, crane := craneClient(t)
	resolve := func() *http.Response {
		req, _ := http.NewRequest("HEAD", cache.url("/v2/team/app/manifests/v1?ns=registry.example"), nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != 200 || got != want {
			t.Errorf("HEAD team/app:v1?ns=registry.example = %d %s, want 200 %s", resp.StatusCode, got, want)
		}
		return resp
	}
	resolve()
	if got := strings.TrimSpace(crane("digest", cache.host()+"/registry.example/team/app:v1")); got != want {
		t.Errorf("crane digest through the cache = %s, want %s", got, want)
	}

	up.stop()
	cache.restart()
	pullWhole(t, cache.ref(t, "registry.example/team/app:v1"), img)
	if w := resolve().Header.Get("Warning"); !strings.Contains(w, "response is stale") {
		t.Errorf("HEAD with the upstream gone: Warning %q, want the stale warning", w)
	}
	if got := strings.TrimSpace(crane("digest", cache.host()+"/registry.example/team/app:v1")); got != want {
		t.Errorf("crane digest with the upstream gone = %s, want %s", got, want)
	}
	resp, _ := cache.do(t, "GET", "/v2/registry.example/team/app/manifests/v2", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET of an uncached tag with the upstream gone = %d, want 503", resp.StatusCode)
	}
}

// TestE2EMirrorContainerd: containerd pulls a name whose hosts.toml
// server is unreachable through the cache as a mirror host, which makes it
// send ?ns=; the cache fetches from its configured upstream.
func TestE2EMirrorContainerd(t *testing.T) {
	containerd, ctr := needContainerd(t)
	up := startServer(t)
	img := ociImage(t)
	if err := remote.Write(up.ref(t, "team/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	cache := startCache(t, up, "registry.invalid", "")

	hostsDir := t.TempDir()
	os.MkdirAll(filepath.Join(hostsDir, "registry.invalid"), 0o755)
	hostsToml := fmt.Sprintf(`server = "https://registry.invalid"

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, cache.host())
	if err := os.WriteFile(filepath.Join(hostsDir, "registry.invalid", "hosts.toml"), []byte(hostsToml), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := startContainerd(t, containerd)
	ref := "registry.invalid/team/app:v1"
	runTool(t, nil, ctr, "--address", sock, "--namespace", "test", "image", "pull", "--hosts-dir", hostsDir, "--snapshotter", "native", ref)
	out := runTool(t, nil, ctr, "--address", sock, "--namespace", "test", "image", "ls")
	if want := digestOf(t, img).String(); !strings.Contains(out, want) {
		t.Errorf("ctr image ls = %q, want %s with digest %s", out, ref, want)
	}
	if _, body := cache.do(t, "GET", "/v2/_catalog", nil, nil); !strings.Contains(string(body), `"registry.invalid/team/app"`) {
		t.Errorf("cache catalog = %s, want registry.invalid/team/app cached", body)
	}
}

// TestE2EMirrorRegistriesConf: skopeo and podman pull a name whose own
// registry is unreachable through a registries.conf mirror that points at
// the cache's host prefix.
func TestE2EMirrorRegistriesConf(t *testing.T) {
	skopeo := needTool(t, "skopeo", installHint)
	podman := needTool(t, "podman", installHint)
	up := startServer(t)
	img := ociImage(t)
	want := digestOf(t, img).String()
	if err := remote.Write(up.ref(t, "team/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	cache := startCache(t, up, "registry.invalid", "")
	dir := t.TempDir()
	env, policy := containersConf(t, dir)
	conf := fmt.Sprintf(`unqualified-search-registries = []
short-name-mode = "disabled"

[[registry]]
prefix = "registry.invalid"
location = "registry.invalid"

[[registry.mirror]]
location = "%s/registry.invalid"
insecure = true
`, cache.host())
	if err := os.WriteFile(filepath.Join(dir, "registries.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := "registry.invalid/team/app:v1"

	// --no-tags: skopeo lists tags from the name's own registry, never
	// from a mirror.
	var info struct{ Digest string }
	raw := runTool(t, env, skopeo, "--registries-conf", filepath.Join(dir, "registries.conf"), "--policy", policy, "inspect", "--no-tags", "docker://"+ref)
	if err := json.Unmarshal([]byte(raw), &info); err != nil || info.Digest != want {
		t.Errorf("skopeo inspect docker://%s = %s (%v), want digest %s", ref, raw, err, want)
	}
	// podman refuses a runroot longer than 50 characters.
	short, err := os.MkdirTemp("", "nora-pm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	global := []string{
		"--root", filepath.Join(short, "root"), "--runroot", filepath.Join(short, "run"),
		"--tmpdir", filepath.Join(short, "tmp"), "--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs", "--events-backend", "none",
	}
	pm := func(args ...string) string {
		return runTool(t, env, podman, append(append([]string{}, global...), args...)...)
	}
	pm("pull", "--quiet", "--signature-policy", policy, ref)
	if got := strings.TrimSpace(pm("image", "inspect", "--format", "{{.Digest}}", ref)); got != want {
		t.Errorf("podman image inspect %s: Digest = %s, want %s", ref, got, want)
	}
}
