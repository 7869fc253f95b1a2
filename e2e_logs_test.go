package main

import (
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestE2EOperatorView reads what an operator sees of one server: the
// start-up line, the access log of a push by a named user, and the
// metrics after a retention pass.
func TestE2EOperatorView(t *testing.T) {
	s := startServerWith(t, aliceAuth()+`
[retention]
[[retention.rules]]
repositories = ["team/**"]
keep_last = 1
`)

	t.Run("start-up line", func(t *testing.T) {
		var line map[string]any
		var raw string
		s.mu.Lock()
		for _, l := range s.logs {
			if strings.Contains(l, `"listening"`) {
				raw = l
			}
		}
		s.mu.Unlock()
		for _, l := range s.logLines() {
			if l["message"] == "listening" {
				line = l
			}
		}
		want := map[string]any{
			"addr": s.host(), "tls": false, "auth": true, "users": float64(1), "rules": float64(1),
			"oidc_issuers": float64(0), "storage": e2eStorage(), "gc": "retention then gc every 6h",
		}
		if s.s3 != nil {
			want["s3_endpoint"], want["s3_bucket"] = s.s3.Endpoint, s.s3.Bucket
			for _, secret := range []string{s.s3.SecretKey, s.s3.AccessKey} {
				if strings.Contains(raw, secret) {
					t.Errorf("the start-up line shows an S3 credential: %s", raw)
				}
			}
		}
		for k, v := range want {
			if line[k] != v {
				t.Errorf("start-up line %s = %v, want %v; line: %s", k, line[k], v, raw)
			}
		}
		if v, _ := line["version"].(string); v == "" {
			t.Errorf("start-up line has no version: %s", raw)
		}
	})

	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})
	for _, tag := range []string{"v1", "v2"} {
		img, err := random.Image(32<<10, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(s.ref(t, "team/app:"+tag), img, alice, remote.WithUserAgent("e2e-operator/1.0")); err != nil {
			t.Fatalf("remote.Write(team/app:%s) as alice = %v", tag, err)
		}
	}

	t.Run("access log names the pusher", func(t *testing.T) {
		var found bool
		for _, l := range s.logLines() {
			if l["message"] != "request" || l["method"] != "PUT" || l["route"] != "/v2/{name}/manifests/{reference}" {
				continue
			}
			found = true
			ua, _ := l["user_agent"].(string)
			if l["identity"] != "alice" || l["identity_kind"] != "user" || !strings.Contains(ua, "e2e-operator/1.0") {
				t.Errorf("manifest PUT logged identity %v (%v), user agent %q; want alice (user) and e2e-operator/1.0", l["identity"], l["identity_kind"], ua)
			}
			if _, ok := l["duration_ms"].(float64); !ok {
				t.Errorf("manifest PUT log line has no duration_ms: %v", l)
			}
		}
		if !found {
			t.Fatal("no access log line for the manifest PUT")
		}
	})

	if out, err := exec.Command(registryBin, "retention", "--config", s.config).CombinedOutput(); err != nil {
		t.Fatalf("registry retention = %v\n%s", err, out)
	}

	t.Run("metrics", func(t *testing.T) {
		resp, body := s.do(t, http.MethodGet, "/metrics", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics = %s", resp.Status)
		}
		m := string(body)
		wants := []string{
			`^nora_build_info\{commit="[^"]+",go="go[^"]+",version="[^"]+"\} 1$`,
			`^nora_http_request_bytes_total\{code="201",method="PUT",route="/v2/\{name\}/manifests/\{reference\}"\} [1-9]`,
			`^nora_storage_metadata_bytes [1-9]`,
			`^nora_retention_tags_deleted_total 1$`,
		}
		if s.s3 != nil {
			wants = append(wants, `^nora_s3_requests_total\{operation="HeadObject"\} [1-9]`)
		}
		for _, w := range wants {
			if !regexp.MustCompile(`(?m)` + w).MatchString(m) {
				t.Errorf("GET /metrics has no line matching %s", w)
			}
		}
		if regexp.MustCompile(`(?m)^nora_\w+\{[^}]*(repository|repo|tag)=`).MatchString(m) {
			t.Error("a nora_ series has a repository or tag label")
		}
	})
}
