package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestE2EDashboardMaintenance drives the real server's GC and retention
// from the dashboard's API: the retention plan is the one the CLI
// prints, passes run in the server and are listed with who started them,
// and a glob delete of tags is what /v2/ then shows.
func TestE2EDashboardMaintenance(t *testing.T) {
	s := startServerWith(t, "[gc]\ninterval = \"0\"\n\n[retention]\n[[retention.rules]]\nrepositories = [\"**\"]\ntags = [\"tmp-*\"]\nolder_than = \"0s\"\n")
	for _, tag := range []string{"tmp-1", "v1", "v2"} {
		img, _ := random.Image(128, 1)
		ref, _ := name.NewTag(s.host()+"/e2e/app:"+tag, name.Insecure)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	js := http.Header{"Content-Type": {"application/json"}}
	var view struct {
		Passes []struct {
			Kind, By string
			Tags     int
		}
		Plan []struct {
			Tag    string
			Delete bool
		}
		Deletes int
	}
	get := func() {
		t.Helper()
		resp, body := s.do(t, "GET", "/api/v1/maintenance", nil, nil)
		if resp.StatusCode != 200 || json.Unmarshal(body, &view) != nil {
			t.Fatalf("GET /api/v1/maintenance = %d %s", resp.StatusCode, body)
		}
	}
	get()
	if view.Deletes != 1 || len(view.Plan) != 1 || view.Plan[0].Tag != "tmp-1" {
		t.Errorf("plan = %+v, want tmp-1 deleted", view)
	}
	if resp, body := s.do(t, "POST", "/api/v1/maintenance/retention", js, nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"kind":"retention","by":"dashboard"`) || !strings.Contains(string(body), `"tags":1`) {
		t.Fatalf("apply retention = %d %s", resp.StatusCode, body)
	}
	if resp, body := s.do(t, "POST", "/api/v1/maintenance/gc", js, nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"kind":"gc","by":"dashboard"`) {
		t.Fatalf("run gc = %d %s", resp.StatusCode, body)
	}
	if out, err := exec.Command(registryBin, "gc", "--config", s.config).CombinedOutput(); err != nil {
		t.Fatalf("registry gc: %v\n%s", err, out)
	}
	get()
	if len(view.Passes) != 3 || view.Passes[0].By != "cli" || view.Passes[1].Kind != "gc" || view.Passes[2].Kind != "retention" || view.Passes[2].Tags != 1 {
		t.Errorf("passes = %+v, want cli gc, dashboard gc, dashboard retention", view.Passes)
	}
	// Tags deleted by glob from the dashboard are gone from /v2/.
	if resp, body := s.do(t, "POST", "/api/v1/repositories/e2e/app/tags/delete", js, []byte(`{"glob":"v*"}`)); resp.StatusCode != 200 || !strings.Contains(string(body), `"tags":["v1","v2"]`) {
		t.Fatalf("glob delete = %d %s", resp.StatusCode, body)
	}
	if resp, body := s.do(t, "GET", "/v2/e2e/app/tags/list", nil, nil); resp.StatusCode == 200 && strings.Contains(string(body), `"v1"`) {
		t.Errorf("tags/list after the delete = %d %s", resp.StatusCode, body)
	}
	if resp, body := s.do(t, "GET", "/ui/gc", nil, nil); resp.StatusCode != 200 || !strings.Contains(string(body), "Run a GC pass") {
		t.Errorf("GET /ui/gc = %d %s", resp.StatusCode, body)
	}
}
