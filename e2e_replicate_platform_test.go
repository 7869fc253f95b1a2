package main

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// otherArch is a platform architecture that is not this machine's.
func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

// twoPlatformIndex is an OCI index of an image for this machine's
// platform, which containerd can unpack, and a random one for another.
func twoPlatformIndex(t *testing.T) (idx v1.ImageIndex, here, there v1.Hash) {
	t.Helper()
	local := ociImage(t)
	other, err := random.Image(4096, 1)
	if err != nil {
		t.Fatal(err)
	}
	idx = mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: local, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: otherArch()}}},
	)
	here, _ = local.Digest()
	there, _ = other.Digest()
	return idx, here, there
}

// TestE2EReplicatePlatform pulls one platform of an index into a
// registry: the index arrives byte-identical, the platform left out is
// MANIFEST_UNKNOWN, containerd pulls the chosen one by the index's
// digest, and a push of such an index over the API stays refused. A run
// without --platform then completes the index.
func TestE2EReplicatePlatform(t *testing.T) {
	a, c := startServer(t), startServer(t)
	idx, here, there := twoPlatformIndex(t)
	if err := remote.WriteIndex(a.ref(t, "team/multi:v1"), idx); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()

	out, errs, err := replicateCmd(t, c, "", "--from", "http://"+a.host()+"/team/multi", "--platform", "linux/"+runtime.GOARCH)
	if err != nil {
		t.Fatalf("registry replicate --from --platform = %v\n%s\n%s", err, out, errs)
	}
	got, err := remote.Index(c.ref(t, "team/multi:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("replicated index digest = %s, want %s", d, want)
	}
	accept := http.Header{"Accept": {string(types.OCIManifestSchema1)}}
	if resp, _ := c.do(t, "GET", "/v2/team/multi/manifests/"+here.String(), accept, nil); resp.StatusCode != 200 {
		t.Errorf("GET the chosen platform = %d, want 200", resp.StatusCode)
	}
	resp, body := c.do(t, "GET", "/v2/team/multi/manifests/"+there.String(), accept, nil)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "MANIFEST_UNKNOWN") {
		t.Errorf("GET the platform left out = %d %s, want 404 MANIFEST_UNKNOWN", resp.StatusCode, body)
	}

	// Over the API, the same index without its platforms is refused.
	raw, _ := idx.RawManifest()
	resp, body = c.do(t, "PUT", "/v2/team/sparse/manifests/v1", http.Header{"Content-Type": {string(types.OCIImageIndex)}}, raw)
	if resp.StatusCode/100 != 4 || !strings.Contains(string(body), "MANIFEST_BLOB_UNKNOWN") {
		t.Errorf("PUT of an index without its platforms = %d %s, want MANIFEST_BLOB_UNKNOWN", resp.StatusCode, body)
	}

	if containerd, ctr := needContainerd(t); containerd != "" {
		sock := startContainerd(t, containerd)
		ref := c.host() + "/team/multi@" + want.String()
		runTool(t, nil, ctr, "--address", sock, "--namespace", "test", "image", "pull", "--plain-http",
			"--snapshotter", "native", "--platform", "linux/"+runtime.GOARCH, ref)
	}

	// A [[replicate.pull]] source with platforms does the same.
	edge := startServerWith(t, fmt.Sprintf(`
[[replicate.pull]]
name = "centre"
url = "http://%s"
insecure = true
repositories = ["team/multi"]
platforms = ["linux/%s"]
interval = "1s"
`, a.host(), runtime.GOARCH))
	eventually(t, "the index pulled", func() error {
		if resp, _ := edge.do(t, "GET", "/v2/team/multi/manifests/"+want.String(), http.Header{"Accept": {string(types.OCIImageIndex)}}, nil); resp.StatusCode != 200 {
			return fmt.Errorf("GET the index = %d", resp.StatusCode)
		}
		return nil
	})
	if resp, _ := edge.do(t, "GET", "/v2/team/multi/manifests/"+there.String(), accept, nil); resp.StatusCode != 404 {
		t.Errorf("GET the platform a pull source left out = %d, want 404", resp.StatusCode)
	}

	if out, errs, err := replicateCmd(t, c, "", "--from", "http://"+a.host()+"/team/multi"); err != nil {
		t.Fatalf("registry replicate --from, every platform = %v\n%s\n%s", err, out, errs)
	}
	if resp, _ := c.do(t, "GET", "/v2/team/multi/manifests/"+there.String(), accept, nil); resp.StatusCode != 200 {
		t.Errorf("GET the other platform after a full run = %d, want 200", resp.StatusCode)
	}
}
