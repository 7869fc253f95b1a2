package main

// End-to-end tests with helm, which keeps charts in a registry as OCI
// artifacts: a config blob of helm's own media type and the packaged
// chart as the only layer, tagged with the chart's version. helm runs
// with a private HOME, XDG directories and registry config, so the
// host's logins and caches neither help nor hurt.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const helmInstallHint = "go install helm.sh/helm/v3/cmd/helm@v3.22.0 (or run .ci/run)"

// The media types helm gives a chart's config and its packaged content.
const (
	helmConfigMediaType = "application/vnd.cncf.helm.config.v1+json"
	helmChartMediaType  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

// helmClient is helm with its own configuration, caches and charts in one
// temporary directory.
type helmClient struct {
	t        *testing.T
	bin, dir string
	env      []string
}

func newHelmClient(t *testing.T) *helmClient {
	t.Helper()
	bin := needTool(t, "helm", helmInstallHint)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	return &helmClient{t: t, bin: bin, dir: dir, env: []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"HELM_REGISTRY_CONFIG=" + filepath.Join(home, "registry.json"),
		// helm also reads Docker's credential config; keep it private.
		"DOCKER_CONFIG=" + filepath.Join(home, "docker"),
	}}
}

// run runs helm and returns its standard output, failing the test if it
// exits non-zero.
func (h *helmClient) run(args ...string) string {
	h.t.Helper()
	return runTool(h.t, h.env, h.bin, args...)
}

// fail runs helm, requires it to exit non-zero and returns what it wrote
// to both outputs.
func (h *helmClient) fail(args ...string) string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = append(os.Environ(), h.env...)
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		h.t.Fatalf("helm %s = %v (timed out: %v), want a refusal\n%s", strings.Join(args, " "), err, ctx.Err() != nil, out)
	}
	return string(out)
}

// chart writes a small chart named mychart at version and packages it,
// returning the path and bytes of the .tgz helm made.
func (h *helmClient) chart(version string) (string, []byte) {
	h.t.Helper()
	src := filepath.Join(h.dir, "src", version, "mychart")
	files := map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: mychart\ndescription: A chart for the nora e2e tests\n" +
			"type: application\nversion: " + version + "\nappVersion: \"1.0\"\n",
		"values.yaml":              "greeting: hello\n",
		"templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
	}
	for name, content := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	pkgDir := filepath.Join(h.dir, "pkg")
	h.run("package", src, "-d", pkgDir)
	tgz := filepath.Join(pkgDir, "mychart-"+version+".tgz")
	b, err := os.ReadFile(tgz)
	if err != nil {
		h.t.Fatalf("after helm package: %v", err)
	}
	return tgz, b
}

// pull runs helm pull into a fresh directory and returns the one file it
// wrote and that file's bytes.
func (h *helmClient) pull(args ...string) (string, []byte) {
	h.t.Helper()
	out, err := os.MkdirTemp(h.dir, "pull-")
	if err != nil {
		h.t.Fatal(err)
	}
	h.run(append([]string{"pull"}, append(args, "-d", out)...)...)
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) != 1 {
		h.t.Fatalf("helm pull %s wrote %v (err %v), want one file", strings.Join(args, " "), entries, err)
	}
	b, err := os.ReadFile(filepath.Join(out, entries[0].Name()))
	if err != nil {
		h.t.Fatal(err)
	}
	return entries[0].Name(), b
}

// checkHelmManifest reads ref's manifest as helm pushed it and checks it
// is a chart manifest whose only layer is tgz and whose config names the
// chart at version.
func checkHelmManifest(t *testing.T, s *e2eServer, ref string, tgz []byte, version string, opts ...remote.Option) {
	t.Helper()
	r := s.ref(t, ref)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		t.Fatalf("remote.Get(%s) = %v", ref, err)
	}
	if desc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("remote.Get(%s).MediaType = %s, want %s", ref, desc.MediaType, types.OCIManifestSchema1)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		t.Fatalf("remote.Get(%s): %v\n%s", ref, err, desc.Manifest)
	}
	if m.Config.MediaType != helmConfigMediaType {
		t.Errorf("manifest of %s: config media type %s, want %s", ref, m.Config.MediaType, helmConfigMediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != helmChartMediaType ||
		m.Layers[0].Digest.String() != sha256of(tgz) || m.Layers[0].Size != int64(len(tgz)) {
		t.Errorf("manifest of %s: layers %+v, want one %s of %s, %d bytes", ref, m.Layers, helmChartMediaType, sha256of(tgz), len(tgz))
	}
	if m.Annotations["org.opencontainers.image.title"] != "mychart" || m.Annotations["org.opencontainers.image.version"] != version {
		t.Errorf("manifest of %s: annotations %v, want title mychart, version %s", ref, m.Annotations, version)
	}

	blob, err := remote.Layer(r.Context().Digest(m.Config.Digest.String()), opts...)
	if err != nil {
		t.Fatalf("remote.Layer(config of %s) = %v", ref, err)
	}
	rc, err := blob.Compressed()
	if err != nil {
		t.Fatalf("reading the config of %s: %v", ref, err)
	}
	defer rc.Close()
	var cfg struct{ Name, Version string }
	if err := json.NewDecoder(rc).Decode(&cfg); err != nil || cfg.Name != "mychart" || cfg.Version != version {
		t.Errorf("config of %s = %+v (err %v), want name mychart, version %s", ref, cfg, err, version)
	}
}

// TestE2EClientHelm pushes charts with helm, reads them back with helm and
// checks what the registry holds.
func TestE2EClientHelm(t *testing.T) {
	s := startServer(t)
	h := newHelmClient(t)
	repo := "oci://" + s.host() + "/charts"
	chart := repo + "/mychart"

	tgz1, want1 := h.chart("0.1.0")
	h.run("push", tgz1, repo, "--plain-http")
	checkHelmManifest(t, s, "charts/mychart:0.1.0", want1, "0.1.0")

	if name, got := h.pull(chart, "--version", "0.1.0", "--plain-http"); name != "mychart-0.1.0.tgz" || !bytes.Equal(got, want1) {
		t.Errorf("helm pull %s --version 0.1.0 = %s (%d bytes, %s), want mychart-0.1.0.tgz as pushed (%d bytes, %s)",
			chart, name, len(got), sha256of(got), len(want1), sha256of(want1))
	}
	out := h.run("show", "chart", chart, "--version", "0.1.0", "--plain-http")
	if !strings.Contains(out, "name: mychart\n") || !strings.Contains(out, "version: 0.1.0\n") {
		t.Errorf("helm show chart %s --version 0.1.0 = %q, want name mychart, version 0.1.0", chart, out)
	}

	// helm turns "+" in a version into "_" in the tag, and picks the
	// newest by semver, which is not the order of the tag list.
	tgz2, _ := h.chart("0.2.0")
	h.run("push", tgz2, repo, "--plain-http")
	tgz3, want3 := h.chart("0.10.0+build.1")
	h.run("push", tgz3, repo, "--plain-http")
	checkHelmManifest(t, s, "charts/mychart:0.10.0_build.1", want3, "0.10.0+build.1")

	resp, body := s.do(t, http.MethodGet, "/v2/charts/mychart/tags/list", nil, nil)
	var tags struct{ Tags []string }
	if err := json.Unmarshal(body, &tags); resp.StatusCode != http.StatusOK || err != nil ||
		fmt.Sprint(tags.Tags) != "[0.1.0 0.10.0_build.1 0.2.0]" {
		t.Errorf("GET /v2/charts/mychart/tags/list = %s %s, want tags [0.1.0 0.10.0_build.1 0.2.0]", resp.Status, body)
	}
	if name, got := h.pull(chart, "--plain-http"); name != "mychart-0.10.0+build.1.tgz" || !bytes.Equal(got, want3) {
		t.Errorf("helm pull %s = %s (%d bytes), want the newest, mychart-0.10.0+build.1.tgz (%d bytes)", chart, name, len(got), len(want3))
	}
	out = h.run("show", "chart", chart, "--plain-http")
	if !strings.Contains(out, "version: 0.10.0+build.1\n") {
		t.Errorf("helm show chart %s = %q, want version 0.10.0+build.1", chart, out)
	}
}

// TestE2EClientHelmLogin drives helm registry login against a registry
// with auth: wrong passwords are refused and stored nowhere, alice may
// push, bob may pull but not push.
func TestE2EClientHelmLogin(t *testing.T) {
	s := startAuthServer(t)
	h := newHelmClient(t)
	host := s.host()
	repo := "oci://" + host + "/team/charts"
	tgz, want := h.chart("0.1.0")

	if out := h.fail("push", tgz, repo, "--plain-http"); !strings.Contains(out, "401") {
		t.Errorf("anonymous helm push %s = %q, want a 401", repo, out)
	}
	if out := h.fail("registry", "login", host, "--plain-http", "-u", "alice", "-p", "wrong"); !strings.Contains(out, "401") {
		t.Errorf("helm registry login %s as alice with a wrong password = %q, want a 401", host, out)
	}
	if b, err := os.ReadFile(filepath.Join(h.dir, "home", "registry.json")); err == nil && strings.Contains(string(b), host) {
		t.Errorf("after a failed helm registry login, the registry config = %s, want no entry for %s", b, host)
	}

	h.run("registry", "login", host, "--plain-http", "-u", "alice", "-p", "alice-secret")
	h.run("push", tgz, repo, "--plain-http")
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})
	checkHelmManifest(t, s, "team/charts/mychart:0.1.0", want, "0.1.0", alice)
	if out := h.fail("push", tgz, "oci://"+host+"/elsewhere", "--plain-http"); !strings.Contains(out, "403") {
		t.Errorf("helm push to elsewhere as alice = %q, want a 403", out)
	}
	h.run("registry", "logout", host)
	if out := h.fail("pull", repo+"/mychart", "--version", "0.1.0", "--plain-http", "-d", h.dir); !strings.Contains(out, "401") {
		t.Errorf("helm pull after helm registry logout = %q, want a 401", out)
	}

	h.run("registry", "login", host, "--plain-http", "-u", "bob", "-p", "bob-secret")
	if name, got := h.pull(repo+"/mychart", "--version", "0.1.0", "--plain-http"); name != "mychart-0.1.0.tgz" || !bytes.Equal(got, want) {
		t.Errorf("helm pull as bob = %s (%d bytes), want mychart-0.1.0.tgz as alice pushed it (%d bytes)", name, len(got), len(want))
	}
	tgz2, _ := h.chart("0.2.0")
	if out := h.fail("push", tgz2, repo, "--plain-http"); !strings.Contains(out, "403") {
		t.Errorf("helm push as bob = %q, want a 403", out)
	}
}
