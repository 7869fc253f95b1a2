package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestE2EReplicateThirdParty pushes to go-containerregistry's registry:
// a dry run first, which copies nothing, then the copy.
func TestE2EReplicateThirdParty(t *testing.T) {
	a := startAuthServer(t)
	want := seedReplication(t, a)
	target := httptest.NewServer(ggcrregistry.New(ggcrregistry.WithReferrersSupport(true)))
	defer target.Close()
	host := strings.TrimPrefix(target.URL, "http://")

	out, errs, err := replicateCmd(t, a, "", "--to", target.URL, "--to-prefix", "mirror", "--dry-run")
	if err != nil || !strings.Contains(out, "dry run: 3 of 3 items to copy") {
		t.Fatalf("registry replicate --dry-run = %v\n%s\n%s", err, out, errs)
	}
	reg, _ := name.NewRegistry(host, name.Insecure)
	if repos, err := remote.Catalog(t.Context(), reg); err != nil || len(repos) != 0 {
		t.Fatalf("catalog of the target after a dry run = %v, %v, want empty", repos, err)
	}
	if out, errs, err := replicateCmd(t, a, "", "--to", target.URL, "--to-prefix", "mirror"); err != nil {
		t.Fatalf("registry replicate --to go-containerregistry = %v\n%s\n%s", err, out, errs)
	}
	sameContent(t, want, refIn(t, a.host(), ""), refIn(t, host, "mirror/"), alice, remote.WithAuth(authn.Anonymous))

	// And back, by glob over the target's catalog, into the running
	// source through its admin socket.
	out, errs, err = replicateCmd(t, a, "", "--from", target.URL+"/mirror/**", "--to-prefix", "team/back")
	if err != nil || !strings.Contains(errs, "using the running server") || !strings.Contains(out, "3 copied, 0 up to date, 0 failed") {
		t.Fatalf("registry replicate --from go-containerregistry = %v\n%s\n%s", err, out, errs)
	}
	sameContent(t, want, refIn(t, a.host(), ""), refIn(t, a.host(), "team/back/mirror/"), alice, alice)
}

// distributionHint says how .ci/run installs the distribution registry,
// apart from PATH, where its `registry` would shadow this one's name.
const distributionHint = `GOBIN="$(go env GOPATH)/bin/distribution" go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2`

// startDistribution runs the distribution registry on a free port and
// returns its host:port.
func startDistribution(t *testing.T) string {
	t.Helper()
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "distribution", "registry")
	if _, err := os.Stat(bin); err != nil {
		if inCI() {
			t.Fatalf("distribution registry: %v; install it: %s", err, distributionHint)
		}
		t.Skipf("distribution registry not installed (%v): %s", err, distributionHint)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("distribution registry log:\n%s", logs.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
	}
	t.Fatalf("distribution registry did not answer on %s within 10s", addr)
	return ""
}

// TestE2EReplicateDistribution pushes to the distribution registry,
// which keeps referrers under the sha256-<hex> tag instead of an API.
func TestE2EReplicateDistribution(t *testing.T) {
	host := startDistribution(t)
	a := startAuthServer(t)
	want := seedReplication(t, a)
	if out, errs, err := replicateCmd(t, a, "", "--to", "http://"+host, "team/**"); err != nil || !strings.Contains(out, "3 copied, 0 up to date, 0 failed") {
		t.Fatalf("registry replicate --to distribution = %v\n%s\n%s", err, out, errs)
	}
	sameContent(t, want, refIn(t, a.host(), ""), refIn(t, host, ""), alice, remote.WithAuth(authn.Anonymous))
	resp, err := http.Get("http://" + host + "/v2/team/app/referrers/" + want.index.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound { // no referrers API: the tag schema holds them
		if _, err := remote.Head(refIn(t, host, "")("team/app:sha256-" + want.index.Hex)); err != nil {
			t.Errorf("referrers tag on the distribution registry: %v", err)
		}
	}
	if out, errs, err := replicateCmd(t, a, "", "--to", "http://"+host, "team/**"); err != nil || !strings.Contains(out, "0 copied, 3 up to date, 0 failed; 0 bytes sent") {
		t.Errorf("registry replicate --to distribution again = %v, want nothing copied\n%s\n%s", err, out, errs)
	}
}

// TestE2EReplicatePlatformPush pushes one platform of an index to other
// registries: go-containerregistry's and the distribution registry both
// refuse an index without its other platforms, and the item fails naming
// --platform, with nothing tagged on the target.
func TestE2EReplicatePlatformPush(t *testing.T) {
	s := startServer(t)
	idx, _, _ := twoPlatformIndex(t)
	if err := remote.WriteIndex(s.ref(t, "team/multi:v1"), idx); err != nil {
		t.Fatal(err)
	}
	ggcr := httptest.NewServer(ggcrregistry.New())
	defer ggcr.Close()
	for _, target := range []string{ggcr.URL, "http://" + startDistribution(t)} {
		out, errs, err := replicateCmd(t, s, "", "--to", target, "--platform", "linux/"+runtime.GOARCH, "team/multi")
		if err == nil || !strings.Contains(errs, "team/multi:v1: ") || !strings.Contains(errs, "without --platform") {
			t.Errorf("registry replicate --to %s --platform = %v, want the item to fail naming --platform:\n%s\n%s", target, err, out, errs)
		}
		if _, err := remote.Head(refIn(t, strings.TrimPrefix(target, "http://"), "")("team/multi:v1")); err == nil {
			t.Errorf("%s has the tag of the refused index", target)
		}
	}
}
