package cmd

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestServeMirror: `registry serve` with a [[mirror.upstreams]] entry
// (with a max_size) answers ?ns= requests from the upstream and exports
// the mirror metrics.
func TestServeMirror(t *testing.T) {
	up := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	defer up.Close()
	img, _ := random.Image(1024, 1)
	ref, _ := name.ParseReference(strings.TrimPrefix(up.URL, "http://") + "/library/alpine:3")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "nora.toml")
	err := os.WriteFile(config, fmt.Appendf(nil, `
[server]
listen = "127.0.0.1:0"
[storage]
root = %q
[log]
format = "json"
[[mirror.upstreams]]
name = "hub"
url = %q
insecure = true
hosts = ["docker.io"]
max_size = "1GiB"
`, filepath.Join(dir, "data"), up.URL), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	listening, stop := serveConfig(t, config)
	defer stop()
	base := "http://" + listening["addr"].(string)
	d, _ := img.Digest()
	req, _ := http.NewRequest("HEAD", base+"/v2/library/alpine/manifests/3?ns=docker.io", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("HEAD library/alpine:3?ns=docker.io = %d %q, want 200 %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), d)
	}
	metrics := get(t, base+"/metrics", http.StatusOK)
	if !strings.Contains(metrics, `nora_mirror_requests_total{result="miss",upstream="hub"} 1`) {
		t.Errorf("GET /metrics has no mirror miss")
	}
	// The cached manifest counts in the cache's size.
	if !strings.Contains(metrics, `nora_mirror_cache_bytes{upstream="hub"} `) || strings.Contains(metrics, `nora_mirror_cache_bytes{upstream="hub"} 0`+"\n") {
		t.Errorf("GET /metrics has no nonzero nora_mirror_cache_bytes{upstream=\"hub\"}")
	}
}
