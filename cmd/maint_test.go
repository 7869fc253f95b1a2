package cmd

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nora-registry/nora/storage"
)

// maintStore fills a store at root: team/app with tags latest, v2 and v1,
// and a 3 MiB blob linked to it that no manifest names, which only the
// grace period keeps.
func maintStore(t *testing.T, root string) {
	t.Helper()
	s, err := storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(data []byte) digest.Digest {
		d := digest.FromBytes(data)
		if _, err := s.PutBlob(t.Context(), "team/app", d, int64(len(data)), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	put(bytes.Repeat([]byte("x"), 3<<20))
	for _, tag := range []string{"v1", "v2", "latest"} {
		layer := put([]byte("layer of " + tag))
		content := fmt.Appendf(nil, `{"schemaVersion":2,"name":%q}`, tag)
		m := storage.Manifest{Digest: digest.FromBytes(content), MediaType: ocispec.MediaTypeImageManifest, Content: content, Blobs: []digest.Digest{layer}}
		if err := s.PutManifest(t.Context(), "team/app", m, []string{tag}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMaintenanceOutput runs gc and retention on a stopped server's store
// and then through the running server: sizes in binary units, or bytes
// with --bytes; what the grace period keeps and when it is collectable;
// a retention summary that counts protected tags; and no progress line
// when the output is not a terminal.
func TestMaintenanceOutput(t *testing.T) {
	dir := t.TempDir()
	config := authConfig(t, dir)
	f, _ := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("[gc]\ngrace = \"2h\"\ninterval = \"0\"\n[retention]\nprotected = [\"latest\"]\n[[retention.rules]]\nrepositories = [\"**\"]\nkeep_last = 1\n")
	f.Close()
	maintStore(t, filepath.Join(dir, "data"))
	collectable := func(out string) time.Time {
		_, at, _ := strings.Cut(out, "collectable by ")
		when, err := time.Parse(time.RFC3339, strings.TrimSpace(at))
		if err != nil {
			t.Errorf("no time after \"collectable by\" in %q", out)
		}
		return when
	}
	check := func(where string) {
		for _, tt := range []struct {
			args []string
			want []string
		}{
			{[]string{"gc", "--dry-run"}, []string{"0 items, 0 B to free\n", "\n3.0 MiB waiting for the grace period, collectable by "}},
			{[]string{"gc", "--dry-run", "--bytes"}, []string{"0 items, 0 bytes to free\n", "\n3145728 bytes waiting for the grace period, collectable by "}},
			{[]string{"gc"}, []string{"; freed 0 B; ", "\n3.0 MiB waiting for the grace period, collectable by "}},
			{[]string{"retention", "--dry-run"}, []string{"keep      protected\n", "\n3 tags and untagged manifests: 1 to delete, 1 kept by a rule, 1 protected, 0 no rule covers\n"}},
		} {
			started := time.Now()
			out, _, err := runCmdSay(t, append(tt.args, "-c", config)...)
			if err != nil {
				t.Errorf("%s: %q = %v", where, tt.args, err)
				continue
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s: %q printed\n%s\nwant it to contain %q", where, tt.args, out, w)
				}
			}
			if strings.ContainsAny(out, "\r\x1b") {
				t.Errorf("%s: %q printed a progress line to output that is not a terminal: %q", where, tt.args, out)
			}
			if tt.args[0] == "gc" {
				if by := collectable(out); by.Before(started.Add(2*time.Hour-time.Second)) || by.After(time.Now().Add(2*time.Hour)) {
					t.Errorf("%s: %q says collectable by %v, want the pass's time plus the 2h grace period", where, tt.args, by)
				}
			}
		}
	}
	check("offline")
	_, stop := serveConfig(t, config)
	defer stop()
	check("through the server")
}

// TestShowProgress draws a line in place once it is due, redraws it, and
// erases it on stop; before it is due, or with no terminal, it writes
// nothing.
func TestShowProgress(t *testing.T) {
	var buf syncBuffer
	n := 0
	stop := showProgress(&buf, func() string { n++; return fmt.Sprintf("gc: step %d", n) }, 0, time.Millisecond)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(buf.String(), "\rgc: step 2\x1b[K"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no second progress line after 10s: %q", buf.String())
		}
	}
	stop()
	if got := buf.String(); !strings.HasPrefix(got, "\rgc: step 1\x1b[K\rgc: step 2\x1b[K") || !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("progress output = %q, want the lines drawn in place, then erased", got)
	}
	var early syncBuffer
	showProgress(&early, func() string { return "gc" }, time.Hour, time.Second)()
	if early.String() != "" {
		t.Errorf("a pass shorter than the delay drew %q", early.String())
	}
	showProgress(nil, func() string { return "gc" }, 0, time.Millisecond)()
}

// TestSocketReport reads the report back from the admin socket's query
// the CLI sends, and sends progress lines as they are written.
func TestSocketReport(t *testing.T) {
	rep := report{raw: true, all: true, live: os.Stdout}
	w := httptest.NewRecorder()
	got := socketReport(w, httptest.NewRequest("POST", "/gc?dry_run=true"+rep.query(), nil))
	if !got.raw || !got.all || got.live == nil || got.out != w {
		t.Fatalf("socketReport(%q) = %+v, want raw, all, live and out the response", rep.query(), got)
	}
	got.live.Write([]byte("\rgc: planning"))
	if !w.Flushed || w.Body.String() != "\rgc: planning" {
		t.Errorf("a progress line was not sent at once: flushed %t, body %q", w.Flushed, w.Body.String())
	}
	if got := socketReport(w, httptest.NewRequest("POST", "/gc?dry_run=true"+(report{}).query(), nil)); got.raw || got.all || got.live != nil {
		t.Errorf("socketReport with nothing asked = %+v", got)
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
