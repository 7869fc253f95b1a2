package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
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
			Tag    string `json:"tag"`
			Delete bool   `json:"delete"`
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

// TestE2EDashboardAdminBrowser: in headless Chromium, an admin deletes
// tags by glob (preview, then confirm) and sees them gone from tags/list,
// runs a GC pass, creates a robot token and revokes it; a user who may
// only pull sees no delete control and is refused the admin pages.
func TestE2EDashboardAdminBrowser(t *testing.T) {
	root, _ := bcrypt.GenerateFromPassword([]byte("root-secret"), bcrypt.MinCost)
	bob, _ := bcrypt.GenerateFromPassword([]byte("bob-secret"), bcrypt.MinCost)
	s := startServerWith(t, fmt.Sprintf(`
[gc]
interval = "0"

[auth]
[[auth.users]]
name = "root"
password = %q
[[auth.users]]
name = "bob"
password = %q
[[auth.rules]]
users = ["root"]
permissions = ["*:**", "admin:*"]
[[auth.rules]]
users = ["bob"]
permissions = ["pull:**"]
`, root, bob))
	creds := remote.WithAuth(&authn.Basic{Username: "root", Password: "root-secret"})
	for _, tag := range []string{"v1", "v2", "keep"} {
		img, _ := random.Image(256, 1)
		ref, _ := name.NewTag(s.host()+"/team/app:"+tag, name.Insecure)
		if err := remote.Write(ref, img, creds); err != nil {
			t.Fatal(err)
		}
	}
	bl := &browserLog{host: s.host()}
	ctx := startBrowser(t, bl)
	shots := artifactDir(t)
	b := browserSteps{t, ctx}
	do, text := b.do, b.text
	shot := func(file string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(shots, file), png, 0o644)
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", file, err)
		}
	}
	login := func(user, pw string) {
		t.Helper()
		do("log in as "+user,
			chromedp.Navigate(s.url("/ui/login")),
			chromedp.WaitVisible(chromedp.CSS("#password")),
			chromedp.SendKeys(chromedp.CSS("#user"), user),
			chromedp.SendKeys(chromedp.CSS("#password"), pw),
			chromedp.Submit(chromedp.CSS("#password")),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/ui/logout"]`)))
	}
	login("root", "root-secret")

	do("preview a glob delete",
		chromedp.Navigate(s.url("/ui/repositories/team/app")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="glob"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="glob"]`), "v*"),
		chromedp.Submit(chromedp.CSS(`input[name="glob"]`)),
		chromedp.WaitVisible(chromedp.CSS("ul.doomed")))
	if got := text("ul.doomed"); !strings.Contains(got, "v1") || !strings.Contains(got, "v2") || strings.Contains(got, "keep") {
		t.Errorf("preview lists %q, want v1 and v2", got)
	}
	shot("delete-preview-desktop.png")
	do("confirm", chromedp.Click(chromedp.CSS("form.confirm button")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if got := text(".notice"); got != "Deleted 2 tags." {
		t.Errorf("after the delete: %q", got)
	}
	hdr := http.Header{"Authorization": {"Basic " + basicAuth("root", "root-secret")}}
	if resp, body := s.do(t, "GET", "/v2/team/app/tags/list", hdr, nil); resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"name":"team/app","tags":["keep"]}` {
		t.Errorf("tags/list after the delete = %d %s", resp.StatusCode, body)
	}

	do("run a GC pass",
		chromedp.Navigate(s.url("/ui/gc")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="gc"]`)),
		chromedp.Click(chromedp.CSS(`button[value="gc"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if got := text("main table"); !strings.Contains(got, "gc") || !strings.Contains(got, "dashboard") {
		t.Errorf("passes after a GC run:\n%s", got)
	}
	shot("gc-desktop.png")

	do("create a robot token",
		chromedp.Navigate(s.url("/ui/robots")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "ci"),
		chromedp.SendKeys(chromedp.CSS(`input[name="permissions"]`), "pull:team/**"),
		chromedp.Submit(chromedp.CSS(`input[name="name"]`)),
		chromedp.WaitVisible(chromedp.CSS(".secret code")))
	secret := text(".secret code")
	if resp, _ := s.do(t, "GET", "/v2/team/app/tags/list", http.Header{"Authorization": {"Basic " + basicAuth("ci", secret)}}, nil); resp.StatusCode != 200 {
		t.Errorf("the new robot token pulls: %d", resp.StatusCode)
	}
	shot("robots-desktop.png")
	do("revoke it",
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke ci"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if resp, _ := s.do(t, "GET", "/v2/team/app/tags/list", http.Header{"Authorization": {"Basic " + basicAuth("ci", secret)}}, nil); resp.StatusCode != 401 {
		t.Errorf("the revoked robot token: %d, want 401", resp.StatusCode)
	}

	// A phone: the admin's menu and pages fit.
	for _, p := range []string{"/ui/repositories/team/app", "/ui/gc", "/ui/robots"} {
		do("open "+p+" at 360 px", chromedp.EmulateViewport(360, 780), chromedp.Navigate(s.url(p)), chromedp.WaitVisible(chromedp.CSS("h1")))
		w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if err != nil || w > 360 {
			t.Errorf("%s at 360 px is %d px wide (%v)", p, w, err)
		}
	}
	shot("robots-360.png")
	do("back to a desktop", chromedp.EmulateViewport(1280, 900))

	// bob may pull only: no delete controls, no admin pages.
	do("log out", chromedp.Click(chromedp.CSS(`form[action="/ui/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#password")))
	login("bob", "bob-secret")
	do("bob's repository page", chromedp.Navigate(s.url("/ui/repositories/team/app")), chromedp.WaitVisible(chromedp.CSS(".pull")))
	if got := text("main"); strings.Contains(got, "Delete") {
		t.Errorf("bob sees delete controls:\n%s", got)
	}
	if got := text("nav"); strings.Contains(got, "GC") || strings.Contains(got, "Robot") {
		t.Errorf("bob's menu has admin pages: %q", got)
	}
	// Not in the browser, whose console logs every 403.
	for _, p := range []string{"/ui/gc", "/ui/robots", "/api/v1/maintenance"} {
		if resp, _ := s.do(t, "GET", p, http.Header{"Authorization": {"Basic " + basicAuth("bob", "bob-secret")}}, nil); resp.StatusCode != 403 {
			t.Errorf("bob's %s = %d, want 403", p, resp.StatusCode)
		}
	}
	bl.check(t)
}

func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// browserSteps runs chromedp steps that fail the test, each step with its
// own deadline so that a hang names its step.
type browserSteps struct {
	t   *testing.T
	ctx context.Context
}

func (b browserSteps) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b browserSteps) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}
