package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const cosignInstallHint = "go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 (or run .ci/run)"

// cosignGC is the GC the cosign test runs: with no grace, every untagged
// manifest goes unless something keeps it, so a signature stored as a
// referrer survives only because its subject does.
const cosignGC = `
[gc]
interval = "0"
grace = "0s"
delete_untagged = true
`

// TestE2EClientCosign signs and attests an image with cosign and a local
// key, offline (no transparency log), both ways cosign stores signatures:
// tags named after the image's digest, and OCI 1.1 referrers. Each
// verifies with the right key, fails with another, and still verifies
// after a GC pass that deletes untagged manifests.
func TestE2EClientCosign(t *testing.T) {
	cosign := needTool(t, "cosign", cosignInstallHint)
	s := startServerWith(t, cosignGC)
	dir := t.TempDir()
	env := []string{
		"HOME=" + dir, "DOCKER_CONFIG=" + filepath.Join(dir, "docker"),
		"COSIGN_PASSWORD=", "COSIGN_YES=true", "COSIGN_EXPERIMENTAL=1",
		"SIGSTORE_NO_CACHE=true", "TUF_ROOT=" + filepath.Join(dir, "tuf"),
		// Nothing public is reachable: the README's commands must work
		// against a private registry with no way out (no transparency
		// log, no Sigstore TUF root); the registry is on loopback, which
		// no proxy setting applies to.
		"HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1", "NO_PROXY=",
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(cosign, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	insecure := []string{"--allow-http-registry"}
	must("generate-key-pair", "--output-key-prefix", filepath.Join(dir, "good"))
	must("generate-key-pair", "--output-key-prefix", filepath.Join(dir, "other"))

	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(s.host()+"/cosign/app:v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d := digestOf(t, img).String()
	byDigest := s.host() + "/cosign/app@" + d

	must(append([]string{"sign", "--key", "good.key", "--tlog-upload=false"}, append(insecure, byDigest)...)...)
	must(append([]string{"sign", "--key", "good.key", "--tlog-upload=false", "--registry-referrers-mode=oci-1-1"}, append(insecure, byDigest)...)...)
	if err := os.WriteFile(filepath.Join(dir, "sbom.json"), []byte(`{"spdxVersion":"SPDX-2.3","name":"app"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	must(append([]string{"attest", "--key", "good.key", "--tlog-upload=false", "--type", "spdxjson", "--predicate", "sbom.json"}, append(insecure, byDigest)...)...)

	sigTag := strings.Replace(d, ":", "-", 1)
	tags, err := remote.List(ref.Context())
	if want := []string{sigTag + ".att", sigTag + ".sig", "v1"}; err != nil || !slices.Equal(tags, want) {
		t.Errorf("tags of cosign/app = %v, %v, want %v", tags, err, want)
	}
	var refs struct {
		Manifests []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	_, body := s.do(t, "GET", "/v2/cosign/app/referrers/"+d, nil, nil)
	if err := json.Unmarshal(body, &refs); err != nil || len(refs.Manifests) != 1 || refs.Manifests[0].ArtifactType != "application/vnd.dev.cosign.artifact.sig.v1+json" {
		t.Errorf("referrers of %s = %s (%v), want one cosign signature", d, body, err)
	}

	verify := func(when string) {
		t.Helper()
		for _, mode := range [][]string{nil, {"--experimental-oci11"}} {
			args := append([]string{"verify", "--key", "good.pub", "--insecure-ignore-tlog"}, insecure...)
			args = append(append(args, mode...), byDigest)
			if out := must(args...); !strings.Contains(out, `"docker-manifest-digest":"`+d+`"`) {
				t.Errorf("%s: cosign verify %v names no %s:\n%s", when, mode, d, out)
			}
			args[2] = "other.pub"
			if out, err := run(args...); err == nil {
				t.Errorf("%s: cosign verify %v with another key succeeded:\n%s", when, mode, out)
			}
		}
		args := append([]string{"verify-attestation", "--key", "good.pub", "--insecure-ignore-tlog", "--type", "spdxjson"}, append(insecure, byDigest)...)
		if out := must(args...); !strings.Contains(out, `"payloadType":"application/vnd.in-toto+json"`) {
			t.Errorf("%s: cosign verify-attestation printed no in-toto statement:\n%s", when, out)
		}
	}
	verify("after signing")

	unsigned, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref.Context().Tag("unsigned"), unsigned); err != nil {
		t.Fatal(err)
	}
	if out, err := run(append([]string{"verify", "--key", "good.pub", "--insecure-ignore-tlog"}, append(insecure, s.host()+"/cosign/app:unsigned")...)...); err == nil {
		t.Errorf("cosign verify of an unsigned image succeeded:\n%s", out)
	}

	time.Sleep(10 * time.Millisecond) // past the zero grace period
	if out, err := exec.Command(registryBin, "gc", "--config", s.config).CombinedOutput(); err != nil {
		t.Fatalf("registry gc: %v\n%s", err, out)
	}
	verify("after GC")
}
