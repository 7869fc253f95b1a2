package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// browserLog collects what a page must never do: write an error to the
// console, throw, or ask a host other than the registry for anything.
type browserLog struct {
	host string
	mu   sync.Mutex
	bad  []string
}

func (b *browserLog) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			msg = fmt.Sprintf("console.error: %v", ev.Args)
		}
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			msg = fmt.Sprintf("log error (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		u, err := url.Parse(ev.Request.URL)
		if err != nil || (u.Scheme != "data" && u.Host != b.host) {
			msg = "request to another host: " + ev.Request.URL
		}
	}
	if msg != "" {
		b.mu.Lock()
		b.bad = append(b.bad, msg)
		b.mu.Unlock()
	}
}

func (b *browserLog) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.bad {
		t.Error(m)
	}
	b.bad = nil
}

// startBrowser starts Debian's chromium headless with a fresh profile and
// no background traffic.
func startBrowser(t *testing.T, bl *browserLog) context.Context {
	t.Helper()
	exe := needTool(t, "chromium", "apt-get install -y --no-install-recommends chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(bl.listen))
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	// Start the browser and its tab on ctx itself: a step's own deadline,
	// on a child context, then ends only that step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return ctx
}

// artifactDir is where screenshots go: $NORA_ARTIFACTS, else a new
// directory under the system's temporary one, which outlives the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("NORA_ARTIFACTS")
	var err error
	if dir != "" {
		dir = filepath.Join(dir, "ui")
		err = os.MkdirAll(dir, 0o755)
	} else {
		dir, err = os.MkdirTemp("", "nora-ui-screenshots-")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

func TestE2EDashboardBrowser(t *testing.T) {
	s := startServerWithAlice(t)
	// A real client pushes an image and an index of it.
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})
	img, _ := random.Image(2048, 3)
	img, _ = mutate.Config(img, v1.Config{Entrypoint: []string{"/usr/bin/app"}, Cmd: []string{"--serve"}, Env: []string{"PORT=8080"}})
	ref, _ := name.ParseReference(s.host()+"/team/app:v1", name.Insecure)
	if err := remote.Write(ref, img, alice); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	size, _ := img.Size()
	arm, _ := random.Image(1024, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	multi, _ := name.ParseReference(s.host()+"/team/app:multi", name.Insecure)
	if err := remote.WriteIndex(multi, idx, alice); err != nil {
		t.Fatal(err)
	}
	// An artifact that refers to the image, as a signature does.
	sig, _ := random.Image(128, 1)
	sig = mutate.ConfigMediaType(sig, "application/vnd.example.signature.v1+json")
	sig = mutate.Subject(sig, v1.Descriptor{MediaType: types.DockerManifestSchema2, Digest: digest, Size: size}).(v1.Image)
	sigDigest, _ := sig.Digest()
	if err := remote.Write(ref.Context().Digest(sigDigest.String()), sig, alice); err != nil {
		t.Fatal(err)
	}

	bl := &browserLog{host: s.host()}
	ctx := startBrowser(t, bl)
	shots := artifactDir(t)
	shot := func(file string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", file, err)
		}
		if err := os.WriteFile(filepath.Join(shots, file), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Each step has its own deadline, so a hang names its step.
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	eval := func(js string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}

	// A repository page sends an anonymous caller to the login form.
	do("open the repository logged out",
		chromedp.Navigate(s.url("/ui/repositories/team/app")),
		chromedp.WaitVisible(chromedp.CSS("#password")))
	shot("login-desktop.png")
	if eval(`document.activeElement.id === "user" ? 1 : 0`) != 1 {
		t.Error("the login form does not start in the user field")
	}
	do("log in with a wrong password",
		chromedp.SendKeys(chromedp.CSS("#user"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), "wrong-password"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS(".error")))
	if got := text(".error"); !strings.Contains(got, "Wrong") {
		t.Errorf("wrong password: error = %q", got)
	}
	if n := eval(`document.querySelectorAll("a[href='/ui/repositories/team/app']").length + document.querySelectorAll("table").length`); n != 0 {
		t.Error("a wrong password shows the repository")
	}
	do("log in",
		chromedp.SendKeys(chromedp.CSS("#password"), "alice-secret"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS(".pull")))
	if got := text("main"); !strings.Contains(got, "docker pull "+s.host()+"/team/app:multi") || !strings.Contains(got, "ctr images pull --plain-http") || !strings.Contains(got, "linux/amd64, linux/arm64") {
		t.Errorf("repository page lacks the pull commands:\n%s", got)
	}
	shot("repository-desktop.png")

	do("open the manifest",
		chromedp.Click(chromedp.CSS(`a[href$="`+digest.String()+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("dl.facts")))
	got := text("main")
	for _, want := range []string{"/usr/bin/app", "--serve", "PORT=8080", "Layers", "Referrers", "application/vnd.example.signature.v1+json"} {
		if !strings.Contains(got, want) {
			t.Errorf("manifest page lacks %q:\n%s", want, got)
		}
	}
	shot("manifest-desktop.png")

	do("list repositories",
		chromedp.Navigate(s.url("/ui/repositories")),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), "team/*\r"),
		// The value attribute is the new page's: the search was sent.
		chromedp.WaitVisible(chromedp.CSS(`#q[value="team/*"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/repositories/team/app"]`)))
	shot("repositories-desktop.png")
	// The keyboard reaches the skip link first, and it leads to the content.
	do("tab to the skip link", chromedp.Navigate(s.url("/ui/repositories")), chromedp.WaitVisible(chromedp.CSS("#q")), chromedp.KeyEvent("\t"))
	if eval(`document.activeElement.className === "skip" ? 1 : 0`) != 1 {
		t.Error("the first Tab does not focus the skip link")
	}
	do("follow the skip link", chromedp.KeyEvent("\r"))
	if eval(`document.activeElement.id === "main" ? 1 : 0`) != 1 {
		t.Error("the skip link does not move focus to the content")
	}

	// A phone: nothing wider than the screen.
	for _, page := range []string{"/ui/", "/ui/repositories/team/app", "/ui/repositories/team/app/manifests/" + digest.String()} {
		do("open "+page+" at 360 px",
			chromedp.EmulateViewport(360, 780),
			chromedp.Navigate(s.url(page)),
			chromedp.WaitVisible(chromedp.CSS("h1")))
		if w := eval(`document.documentElement.scrollWidth`); w > 360 {
			t.Errorf("%s at 360 px is %d px wide", page, w)
		}
	}
	shot("manifest-360.png")
	do("overview at 360 px", chromedp.Navigate(s.url("/ui/")), chromedp.WaitVisible(chromedp.CSS("#repositories")))
	if got := text("#repositories"); got != "1" {
		t.Errorf("overview shows %s repositories, want 1", got)
	}
	shot("overview-360.png")

	do("log out",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Click(chromedp.CSS(`form[action="/ui/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.Navigate(s.url("/ui/repositories/team/app")),
		chromedp.WaitVisible(chromedp.CSS("#password")))
	bl.check(t)
}

// TestE2EDashboardSwitch checks that the dashboard is on by default, with
// / sending browsers to it, and that [ui] enabled = false removes it.
func TestE2EDashboardSwitch(t *testing.T) {
	on := startServer(t)
	if resp, _ := on.do(t, "GET", "/", nil, nil); resp.Request.URL.Path != "/ui/" || resp.StatusCode != 200 {
		t.Errorf("GET / ended at %s with %d, want /ui/ with 200", resp.Request.URL.Path, resp.StatusCode)
	}
	if resp, body := on.do(t, "GET", "/api/v1/repositories", nil, nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"repositories":[]`) {
		t.Errorf("GET /api/v1/repositories = %d %s, want an empty list", resp.StatusCode, body)
	}
	off := startServerWith(t, "[ui]\nenabled = false\n")
	for _, path := range []string{"/", "/ui/", "/api/v1/overview"} {
		if resp, _ := off.do(t, "GET", path, nil, nil); resp.StatusCode != 404 {
			t.Errorf("with the dashboard off, GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
}
