package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const conformanceHint = "go install github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111 (or run .ci/run)"

// TestE2EConformance runs the OCI distribution-spec conformance suite,
// the official one, against the binary: every API and data set of spec
// 1.1, with the optional checks a complete registry passes turned on
// (Docker-Content-Digest on blobs and manifests, upload cancel, tags as
// parameters of a manifest PUT). Sparse manifests, ones naming content
// never pushed, stay off: the registry refuses them with
// MANIFEST_BLOB_UNKNOWN so that a tagged image is always whole.
func TestE2EConformance(t *testing.T) {
	bin := needTool(t, "conformance", conformanceHint)
	s := startServer(t)
	dir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+dir,
		"OCI_RESULTS_DIR="+filepath.Join(dir, "results"),
		"OCI_VERSION=1.1",
		"OCI_LOG=warn",
		"OCI_REGISTRY="+s.host(),
		"OCI_TLS=disabled",
		"OCI_API_BLOBS_DIGEST_HEADER=true",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_MANIFESTS_DIGEST_HEADER=true",
		"OCI_API_MANIFESTS_TAG_PARAM=true",
		"OCI_DATA_SPARSE=false",
	)
	out, err := cmd.CombinedOutput()
	passed, failed := conformanceCount(out, "Pass"), conformanceCount(out, "FAIL")
	if err != nil || failed != "0" || passed == "" || passed == "0" {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "failed test") || strings.HasSuffix(l, ": FAIL") {
				t.Log(l)
			}
		}
		t.Fatalf("conformance suite: %v; %s passed, %s failed", err, passed, failed)
	}
	t.Logf("conformance suite: %s checks passed, none failed", passed)
}

// conformanceCount reads a total of the suite's summary, such as
// "  Pass..........:   862", or "" if absent.
func conformanceCount(out []byte, what string) string {
	m := regexp.MustCompile(`(?m)^\s*` + what + `\.+:\s+(\d+)\s*$`).FindSubmatch(out)
	if m == nil {
		return ""
	}
	return string(m[1])
}
