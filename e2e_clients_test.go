package main

// End-to-end tests with the clients people point at a registry: skopeo,
// podman, containerd's ctr and regctl. Each runs with its own temporary
// configuration and storage so the host's setup neither helps nor hurts,
// and talks only to the registry on 127.0.0.1.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const installHint = "apt-get install -y skopeo podman containerd; go install github.com/regclient/regclient/cmd/regctl@v0.11.7 (or run .ci/run)"

// ociImage is a small runnable-looking image for this machine's platform,
// with OCI media types and real gzip tar layers, as container runtimes
// insist on.
func ociImage(t *testing.T) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for range 2 {
		l, err := random.Layer(256<<10, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "nora e2e", Created: v1.Time{Time: time.Unix(0, 0)}}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Cmd = []string{"/bin/true"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// writeLayout writes img as an OCI image layout in dir under tag.
func writeLayout(t *testing.T, dir string, img v1.Image, tag string) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatalf("layout.Write(%s) = %v", dir, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatalf("layout.AppendImage = %v", err)
	}
}

// containersConf writes the files of containers/image and
// containers/storage (skopeo, podman) into dir and returns the
// environment that points them there, and the policy path.
func containersConf(t *testing.T, dir string) (env []string, policy string) {
	t.Helper()
	files := map[string]string{
		"policy.json":     `{"default":[{"type":"insecureAcceptAnything"}]}`,
		"registries.conf": "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n",
		"containers.conf": "[engine]\nevents_logger = \"none\"\ncgroup_manager = \"cgroupfs\"\n",
		"storage.conf": fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			filepath.Join(dir, "root"), filepath.Join(dir, "runroot")),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []string{
		"HOME=" + dir,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(dir, "registries.conf"),
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
		"TMPDIR=" + dir,
	}, filepath.Join(dir, "policy.json")
}

func TestE2EClientSkopeo(t *testing.T) {
	skopeo := needTool(t, "skopeo", installHint)
	s := startServer(t)
	dir := t.TempDir()
	env, policy := containersConf(t, dir)
	img := ociImage(t)
	want := digestOf(t, img)
	src, out := filepath.Join(dir, "src"), filepath.Join(dir, "out")
	writeLayout(t, src, img, "v1")
	remoteRef := "docker://" + s.host() + "/skopeo/app:v1"

	sk := func(args ...string) string {
		return runTool(t, env, skopeo, append([]string{"--policy", policy}, args...)...)
	}
	sk("copy", "--preserve-digests", "--dest-tls-verify=false", "oci:"+src+":v1", remoteRef)

	var info struct{ Digest string }
	raw := sk("inspect", "--tls-verify=false", remoteRef)
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, raw)
	}
	if info.Digest != want.String() {
		t.Errorf("skopeo inspect %s: Digest = %s, want %s", remoteRef, info.Digest, want)
	}

	sk("copy", "--preserve-digests", "--src-tls-verify=false", remoteRef, "oci:"+out+":v1")
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatalf("layout.ImageIndexFromPath(%s) = %v", out, err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Digest != want {
		t.Fatalf("skopeo copy %s oci:%s: index = %+v (err %v), want one manifest %s", remoteRef, out, im, err, want)
	}
	got, err := idx.Image(want)
	if err != nil {
		t.Fatal(err)
	}
	checkLayers(t, got)

	// The README's way to make the layout from a `docker save` tarball.
	tar, made := filepath.Join(dir, "image.tar"), filepath.Join(dir, "layout")
	if err := tarball.WriteToFile(tar, name.MustParseReference("localhost/myimage:latest"), img); err != nil {
		t.Fatal(err)
	}
	sk("copy", "docker-archive:"+tar, "oci:"+made+":1.0")
	sk("copy", "--preserve-digests", "--dest-tls-verify=false", "oci:"+made+":1.0", "docker://"+s.host()+"/skopeo/app:1.0")
	if _, err := remote.Head(s.ref(t, "skopeo/app:1.0")); err != nil {
		t.Errorf("remote.Head(skopeo/app:1.0) after pushing a layout made from a docker-archive = %v", err)
	}
}

func TestE2EClientPodman(t *testing.T) {
	podman := needTool(t, "podman", installHint)
	s := startServer(t)
	dir := t.TempDir()
	env, policy := containersConf(t, dir)
	img := ociImage(t)
	// podman names an oci: image after its path, and image names are
	// lowercase: t.TempDir holds the test's mixed-case name.
	src, err := os.MkdirTemp("", "nora-e2e-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(src) })
	writeLayout(t, src, img, "v1")
	global := []string{
		"--root", filepath.Join(dir, "root"),
		"--runroot", filepath.Join(dir, "runroot"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "none",
	}
	pm := func(args ...string) string {
		return runTool(t, env, podman, append(append([]string{}, global...), args...)...)
	}
	ref := s.host() + "/podman/app:v1"

	id := strings.TrimSpace(pm("pull", "--quiet", "--signature-policy", policy, "oci:"+src+":v1"))
	pm("tag", id, ref)
	digestFile := filepath.Join(dir, "digest")
	pm("push", "--signature-policy", policy, "--tls-verify=false", "--digestfile", digestFile, ref, "docker://"+ref)
	pushed, err := os.ReadFile(digestFile)
	if err != nil {
		t.Fatal(err)
	}

	// podman stores layers uncompressed and compresses them again on push,
	// so compare what survives that: the manifest the registry holds and
	// the layers' diff ids.
	got, err := remote.Image(s.ref(t, "podman/app:v1"))
	if err != nil {
		t.Fatalf("remote.Image(%s) = %v", ref, err)
	}
	if d := digestOf(t, got); d.String() != strings.TrimSpace(string(pushed)) {
		t.Errorf("remote.Image(%s).Digest() = %s, want %s as podman push reported", ref, d, pushed)
	}
	checkLayers(t, got)
	if g, w := diffIDs(t, got), diffIDs(t, img); g != w {
		t.Errorf("diff ids of %s = %s, want %s", ref, g, w)
	}

	pm("rmi", "--all", "--force")
	pm("pull", "--signature-policy", policy, "--tls-verify=false", ref)
	out := pm("image", "inspect", "--format", "{{.Digest}}", ref)
	if strings.TrimSpace(out) != strings.TrimSpace(string(pushed)) {
		t.Errorf("podman image inspect %s: Digest = %s, want %s", ref, strings.TrimSpace(out), pushed)
	}
}

func diffIDs(t *testing.T, img v1.Image) string {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(cf.RootFS.DiffIDs)
}

func TestE2EClientContainerd(t *testing.T) {
	containerd, ctr := needContainerd(t)
	s := startServer(t)
	img := ociImage(t)
	ref := s.ref(t, "ctr/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", ref, err)
	}

	sock := startContainerd(t, containerd)
	c := func(args ...string) string {
		return runTool(t, nil, ctr, append([]string{"--address", sock, "--namespace", "test"}, args...)...)
	}
	c("image", "pull", "--plain-http", "--snapshotter", "native", ref.String())

	// The README's hosts directory: plain HTTP is said by the server's
	// scheme, with no --plain-http and no skip_verify.
	viaHosts := s.ref(t, "ctr/app:v2")
	if err := remote.Write(viaHosts, img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", viaHosts, err)
	}
	hosts := filepath.Join(t.TempDir(), "certs.d")
	os.MkdirAll(filepath.Join(hosts, s.host()), 0o755)
	hostsTOML := fmt.Sprintf("server = \"http://%[1]s\"\n\n[host.\"http://%[1]s\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n", s.host())
	if err := os.WriteFile(filepath.Join(hosts, s.host(), "hosts.toml"), []byte(hostsTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	c("image", "pull", "--hosts-dir", hosts, "--snapshotter", "native", viaHosts.String())

	out := c("image", "ls")
	for _, r := range []string{ref.String(), viaHosts.String()} {
		var line string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 0 && f[0] == r {
				line = sc.Text()
			}
		}
		if want := digestOf(t, img).String(); !strings.Contains(line, want) {
			t.Errorf("ctr image ls = %q, want a line for %s with digest %s", out, r, want)
		}
	}
}

// needContainerd returns the paths of containerd and ctr, or skips the
// test (fails it in CI) when they are missing or the test is not root.
func needContainerd(t *testing.T) (containerd, ctr string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if inCI() {
			t.Fatalf("os.Geteuid() = %d, want 0: containerd needs root in CI", os.Geteuid())
		}
		t.Skip("containerd needs root; run as root to include it")
	}
	return needTool(t, "containerd", installHint), needTool(t, "ctr", installHint)
}

// startContainerd runs a private containerd as the test's child, with
// its own root, state and socket, and stops it when the test ends.
func startContainerd(t *testing.T, bin string) (sock string) {
	t.Helper()
	// A unix socket path must stay under ~100 bytes; t.TempDir can be
	// long, so keep the whole instance in a short directory.
	dir, err := os.MkdirTemp("", "ctrd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "c.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
# Only what pulling and unpacking with the native snapshotter needs: no
# CRI, no kernel-specific snapshotters, nothing written outside dir.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = %q

[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("containerd log:\n%s", b)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			return sock
		}
		select {
		case err := <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd exited before listening: %v\n%s", err, b)
		case <-ctx.Done():
			t.Fatalf("containerd socket %s not ready within 30s", sock)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestE2EClientRegctl(t *testing.T) {
	regctl := needTool(t, "regctl", installHint)
	s := startServer(t)
	dir := t.TempDir()
	env := []string{"HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	rc := func(args ...string) string { return runTool(t, env, regctl, args...) }
	img, err := random.Image(256<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "a:1"), img); err != nil {
		t.Fatalf("remote.Write(a:1) = %v", err)
	}
	host := s.host()
	rc("registry", "set", "--tls", "disabled", host)

	rc("image", "copy", host+"/a:1", host+"/b:1")
	if d, err := remote.Head(s.ref(t, "b:1")); err != nil || d.Digest != digestOf(t, img) {
		t.Errorf("after regctl image copy, remote.Head(b:1) = %v, %v, want digest %s", d, err, digestOf(t, img))
	}

	const sbom = "application/vnd.example.sbom"
	payload := filepath.Join(dir, "sbom.json")
	if err := os.WriteFile(payload, []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	rc("artifact", "put", "--subject", host+"/a:1", "--artifact-type", sbom,
		"--file-media-type", "application/spdx+json", "--file", payload)

	var list struct {
		Manifests []v1.Descriptor `json:"manifests"`
	}
	out := rc("artifact", "list", host+"/a:1", "--format", "{{jsonPretty .Manifest}}")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("regctl artifact list: %v\n%s", err, out)
	}
	if len(list.Manifests) != 1 || list.Manifests[0].ArtifactType != sbom {
		t.Errorf("regctl artifact list %s/a:1 = %s, want one %s", host, out, sbom)
	}
	got := rc("artifact", "get", "--subject", host+"/a:1", "--filter-artifact-type", sbom)
	if want := `{"spdxVersion":"SPDX-2.3"}`; got != want {
		t.Errorf("regctl artifact get --subject %s/a:1 = %q, want %q", host, got, want)
	}

	rc("image", "copy", host+"/a:1", host+"/a:2")
	if got := strings.Fields(rc("tag", "ls", host+"/a")); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("regctl tag ls %s/a = %v, want [1 2]", host, got)
	}
	rc("tag", "delete", host+"/a:2")
	if got := strings.Fields(rc("tag", "ls", host+"/a")); fmt.Sprint(got) != "[1]" {
		t.Errorf("after regctl tag delete, regctl tag ls %s/a = %v, want [1]", host, got)
	}
	if got := strings.TrimSpace(rc("image", "digest", host+"/a:1")); got != digestOf(t, img).String() {
		t.Errorf("after regctl tag delete a:2, regctl image digest %s/a:1 = %s, want %s", host, got, digestOf(t, img))
	}
}

func TestE2EClientSkopeoMultiArchDelete(t *testing.T) {
	skopeo := needTool(t, "skopeo", installHint)
	s := startServer(t)
	dir := t.TempDir()
	env, policy := containersConf(t, dir)
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        ociImage(t),
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	src := filepath.Join(dir, "src")
	p, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	sk := func(args ...string) string {
		return runTool(t, env, skopeo, append([]string{"--policy", policy}, args...)...)
	}
	remoteRef := "docker://" + s.host() + "/skopeo/multi:v1"
	// skopeo re-serializes an index its own way, so --preserve-digests
	// would refuse ggcr's bytes; the images inside keep their digests.
	sk("copy", "--all", "--dest-tls-verify=false", "oci:"+src+":v1", remoteRef)

	raw := sk("inspect", "--raw", "--tls-verify=false", remoteRef)
	pushed, err := v1.ParseIndexManifest(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v\n%s", remoteRef, err, raw)
	}
	im, _ := idx.IndexManifest()
	for i, d := range pushed.Manifests {
		if i >= len(im.Manifests) || d.Digest != im.Manifests[i].Digest {
			t.Errorf("skopeo inspect --raw %s: manifests[%d] = %s, want the digests of %v", remoteRef, i, d.Digest, im.Manifests)
		}
	}
	desc, err := remote.Head(s.ref(t, "skopeo/multi:v1"))
	if err != nil || desc.Digest.String() != sha256of([]byte(raw)) {
		t.Fatalf("remote.Head(skopeo/multi:v1) = %v, %v, want the digest of the bytes skopeo read, %s", desc, err, sha256of([]byte(raw)))
	}
	var tags struct{ Tags []string }
	out := sk("list-tags", "--tls-verify=false", "docker://"+s.host()+"/skopeo/multi")
	if err := json.Unmarshal([]byte(out), &tags); err != nil || fmt.Sprint(tags.Tags) != "[v1]" {
		t.Errorf("skopeo list-tags = %s (err %v), want tags [v1]", out, err)
	}

	sk("delete", "--tls-verify=false", remoteRef)
	if _, err := remote.Head(s.ref(t, "skopeo/multi@"+desc.Digest.String())); err == nil {
		t.Errorf("after skopeo delete, remote.Head(skopeo/multi@%s) = nil error, want not found", desc.Digest)
	}
	if _, err := remote.Head(s.ref(t, "skopeo/multi:v1")); err == nil {
		t.Errorf("after skopeo delete, remote.Head(skopeo/multi:v1) = nil error, want not found")
	}
	// The children are separate manifests and stay.
	for _, d := range im.Manifests {
		if _, err := remote.Head(s.ref(t, "skopeo/multi@"+d.Digest.String())); err != nil {
			t.Errorf("after skopeo delete of the index, remote.Head(child %s) = %v, want found", d.Digest, err)
		}
	}
}
