package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestE2EActivityBrowser opens the activity and storage pages of an open
// registry after a real client's push, at desktop size and at 360 px,
// with no console error, request to another host or overflow.
func TestE2EActivityBrowser(t *testing.T) {
	s := startServer(t)
	img, _ := random.Image(1024, 1)
	ref, _ := name.ParseReference(s.host()+"/team/app:v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	s.restart() // writes the queued entries
	bl := &browserLog{host: s.host()}
	ctx := startBrowser(t, bl)
	shots := artifactDir(t)
	for _, c := range []struct {
		page, ready, want, shot string
	}{
		{"/ui/activity", "table.activity", "team/app", "activity"},
		{"/ui/storage", ".chart svg", "Bytes of stored blobs per day", "storage"},
	} {
		for _, width := range []int64{1280, 360} {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := chromedp.Do(sctx,
				chromedp.EmulateViewport(width, 800),
				chromedp.Navigate(s.url(c.page)),
				chromedp.WaitVisible(chromedp.CSS(c.ready)))
			var text string
			var scroll int64
			var png []byte
			if err == nil {
				text, err = chromedp.Run(sctx, chromedp.Text(chromedp.CSS("main")))
			}
			if err == nil {
				scroll, err = chromedp.Run(sctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
			}
			if err == nil {
				png, err = chromedp.Run(sctx, chromedp.FullScreenshot(100))
			}
			cancel()
			if err != nil {
				t.Fatalf("%s at %d px: %v", c.page, width, err)
			}
			if !strings.Contains(text, c.want) {
				t.Errorf("%s at %d px shows %q, want %q", c.page, width, text, c.want)
			}
			if scroll > width {
				t.Errorf("%s at %d px is %d px wide", c.page, width, scroll)
			}
			if err := os.WriteFile(filepath.Join(shots, c.shot+"-"+map[int64]string{1280: "desktop", 360: "360"}[width]+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	bl.check(t)
}
