package main

// End-to-end tests with oras, the client people use to keep artifacts
// that are not container images (SBOMs, signatures, charts, plain files)
// in a registry. oras runs with a private HOME so the host's credentials
// and config neither help nor hurt, and from a temporary working
// directory, because it names each pushed file by its relative path.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const orasInstallHint = "go install oras.land/oras/cmd/oras@v1.3.6 (or run .ci/run)"

// orasResult is the part of oras's --format json output the tests read:
// push, attach and discover describe a manifest, pull lists files.
type orasResult struct {
	Digest       string            `json:"digest"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
	Referrers    []orasResult      `json:"referrers"`
	Files        []struct {
		Path   string `json:"path"`
		Digest string `json:"digest"`
	} `json:"files"`
}

// orasFile is a file the tests push, with the media type oras gives it.
type orasFile struct {
	name, mediaType string
	content         []byte
}

// arg is the file as oras push takes it on its command line.
func (f orasFile) arg() string { return f.name + ":" + f.mediaType }

// orasClient changes into a fresh directory and returns a runner for oras
// whose --format json output, when asked for, it decodes.
func orasClient(t *testing.T) (dir string, run func(args ...string) string, runJSON func(args ...string) orasResult) {
	t.Helper()
	bin := needTool(t, "oras", orasInstallHint)
	dir = t.TempDir()
	t.Chdir(dir)
	env := []string{
		"HOME=" + filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "home", "config"),
		"DOCKER_CONFIG=" + filepath.Join(dir, "home", "docker"),
	}
	run = func(args ...string) string { return runTool(t, env, bin, args...) }
	runJSON = func(args ...string) orasResult {
		t.Helper()
		out := run(append(args, "--format", "json")...)
		var r orasResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("oras %s --format json: %v\n%s", strings.Join(args, " "), err, out)
		}
		return r
	}
	return dir, run, runJSON
}

// writeFiles writes files into dir.
func writeFiles(t *testing.T, dir string, files ...orasFile) {
	t.Helper()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestE2EClientOras pushes files as an artifact and reads them back every
// way oras offers, then tags, copies and deletes it.
func TestE2EClientOras(t *testing.T) {
	s := startServer(t)
	dir, oras, orasJSON := orasClient(t)
	host := s.host()
	files := []orasFile{
		{"notes.txt", "text/plain", []byte("hello from oras\n")},
		{"data.bin", "application/vnd.nora.e2e.data", randomBytes(t, 64<<10)},
	}
	writeFiles(t, dir, files...)
	const artifactType = "application/vnd.nora.e2e.bundle"
	ref := host + "/oras/art:v1"

	pushed := orasJSON("push", "--plain-http", "--artifact-type", artifactType,
		"--annotation", "org.example.team=registry", ref, files[0].arg(), files[1].arg())
	if desc, err := remote.Head(s.ref(t, "oras/art:v1")); err != nil || desc.Digest.String() != pushed.Digest {
		t.Fatalf("after oras push, remote.Head(oras/art:v1) = %v, %v, want digest %s", desc, err, pushed.Digest)
	}

	raw := oras("manifest", "fetch", "--plain-http", ref)
	if got := sha256of([]byte(raw)); got != pushed.Digest {
		t.Errorf("sha256(oras manifest fetch %s) = %s, want %s as oras push reported", ref, got, pushed.Digest)
	}
	m, err := v1.ParseManifest(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("oras manifest fetch %s: %v\n%s", ref, err, raw)
	}
	if m.ArtifactType != artifactType || m.Annotations["org.example.team"] != "registry" {
		t.Errorf("oras manifest fetch %s: artifactType %q, annotations %v, want %q and org.example.team=registry",
			ref, m.ArtifactType, m.Annotations, artifactType)
	}
	if len(m.Layers) != len(files) {
		t.Fatalf("oras manifest fetch %s: %d layers, want %d", ref, len(m.Layers), len(files))
	}
	for i, f := range files {
		l := m.Layers[i]
		if string(l.MediaType) != f.mediaType || l.Digest.String() != sha256of(f.content) ||
			l.Size != int64(len(f.content)) || l.Annotations["org.opencontainers.image.title"] != f.name {
			t.Errorf("oras manifest fetch %s: layers[%d] = %s %s %d %v, want %s %s %d title %s", ref, i,
				l.MediaType, l.Digest, l.Size, l.Annotations, f.mediaType, sha256of(f.content), len(f.content), f.name)
		}
	}

	out := filepath.Join(dir, "pulled")
	orasJSON("pull", "--plain-http", "-o", out, ref)
	checkFiles(t, "oras pull "+ref, out, files)

	layer := host + "/oras/art@" + m.Layers[1].Digest.String()
	if got := oras("blob", "fetch", "--plain-http", "--output", "-", layer); !bytes.Equal([]byte(got), files[1].content) {
		t.Errorf("oras blob fetch %s: %d bytes, sha256 %s, want %s", layer, len(got), sha256of([]byte(got)), sha256of(files[1].content))
	}

	oras("tag", "--plain-http", ref, "v2")
	if got := strings.Fields(oras("repo", "tags", "--plain-http", host+"/oras/art")); fmt.Sprint(got) != "[v1 v2]" {
		t.Errorf("oras repo tags %s/oras/art = %v, want [v1 v2]", host, got)
	}

	oras("cp", "--from-plain-http", "--to-plain-http", ref, host+"/oras/copy:c1")
	if desc, err := remote.Head(s.ref(t, "oras/copy:c1")); err != nil || desc.Digest.String() != pushed.Digest {
		t.Errorf("after oras cp, remote.Head(oras/copy:c1) = %v, %v, want digest %s", desc, err, pushed.Digest)
	}

	oras("manifest", "delete", "--plain-http", "--force", host+"/oras/art@"+pushed.Digest)
	for _, r := range []string{"oras/art:v1", "oras/art:v2", "oras/art@" + pushed.Digest} {
		if _, err := remote.Head(s.ref(t, r)); err == nil {
			t.Errorf("after oras manifest delete, remote.Head(%s) = nil error, want not found", r)
		}
	}
	if got := strings.Fields(oras("repo", "tags", "--plain-http", host+"/oras/art")); len(got) != 0 {
		t.Errorf("after oras manifest delete, oras repo tags %s/oras/art = %v, want none", host, got)
	}
	// The copy shares the blobs the deleted manifest named; it must still
	// pull whole.
	out = filepath.Join(dir, "pulled-copy")
	orasJSON("pull", "--plain-http", "-o", out, host+"/oras/copy:c1")
	checkFiles(t, "oras pull "+host+"/oras/copy:c1 after deleting oras/art", out, files)
}

// TestE2EClientOrasReferrers attaches an SBOM to an artifact, finds it
// through the referrers API and copies both to another repository.
func TestE2EClientOrasReferrers(t *testing.T) {
	s := startServer(t)
	dir, oras, orasJSON := orasClient(t)
	host := s.host()
	art := orasFile{"app.txt", "text/plain", []byte("the subject\n")}
	sbom := orasFile{"sbom.spdx.json", "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`)}
	writeFiles(t, dir, art, sbom)
	const sbomType = "application/vnd.nora.e2e.sbom"
	ref := host + "/oras/app:v1"
	subject := orasJSON("push", "--plain-http", ref, art.arg())

	attached := orasJSON("attach", "--plain-http", "--artifact-type", sbomType, ref, sbom.arg())
	found := orasJSON("discover", "--plain-http", ref)
	if len(found.Referrers) != 1 || found.Referrers[0].Digest != attached.Digest || found.Referrers[0].ArtifactType != sbomType {
		t.Errorf("oras discover %s = %+v, want one referrer %s of type %s", ref, found.Referrers, attached.Digest, sbomType)
	}
	if got := orasJSON("discover", "--plain-http", "--artifact-type", "application/vnd.nora.e2e.other", ref); len(got.Referrers) != 0 {
		t.Errorf("oras discover --artifact-type application/vnd.nora.e2e.other %s = %+v, want no referrers", ref, got.Referrers)
	}
	// oras falls back to a sha256-<hex> tag index when a registry does not
	// answer the subject's push with OCI-Subject; the only tag must be ours.
	if got := strings.Fields(oras("repo", "tags", "--plain-http", host+"/oras/app")); fmt.Sprint(got) != "[v1]" {
		t.Errorf("oras repo tags %s/oras/app = %v, want [v1] (no referrers tag schema fallback)", host, got)
	}

	oras("cp", "--recursive", "--from-plain-http", "--to-plain-http", ref, host+"/oras/mirror:v1")
	copied := orasJSON("discover", "--plain-http", host+"/oras/mirror:v1")
	if copied.Digest != subject.Digest || len(copied.Referrers) != 1 || copied.Referrers[0].Digest != attached.Digest {
		t.Errorf("after oras cp -r, oras discover %s/oras/mirror:v1 = %s with referrers %+v, want %s with one referrer %s",
			host, copied.Digest, copied.Referrers, subject.Digest, attached.Digest)
	}
	out := filepath.Join(dir, "sbom")
	orasJSON("pull", "--plain-http", "-o", out, host+"/oras/mirror@"+attached.Digest)
	checkFiles(t, "oras pull the copied SBOM", out, []orasFile{sbom})
}

// checkFiles compares the files in dir with want, by name and bytes.
func checkFiles(t *testing.T, what, dir string, want []orasFile) {
	t.Helper()
	for _, f := range want {
		got, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		if !bytes.Equal(got, f.content) {
			t.Errorf("%s: %s has sha256 %s, want %s", what, f.name, sha256of(got), sha256of(f.content))
		}
	}
}
