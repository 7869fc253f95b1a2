package cmd

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/retention"
	"github.com/nora-registry/nora/storage"
)

func TestRestartKeys(t *testing.T) {
	running := DefaultFile()
	f := DefaultFile()
	f.Server.Listen = ":6000"
	f.Storage.S3.Bucket = "other"
	f.Log.Format = "console"
	f.Log.Level = "debug"
	f.GC.Interval = "1h"
	f.RateLimit.Enabled = !f.RateLimit.Enabled
	f.Retention = &retention.Config{}
	f.Auth = &auth.Config{Service: "nora"}
	want := []string{"auth (turning authentication on or off)", "server.listen", "storage.s3.bucket", "log.format"}
	if got := restartKeys(running, f); !reflect.DeepEqual(got, want) {
		t.Errorf("restartKeys = %q, want %q", got, want)
	}
	if got := restartKeys(running, DefaultFile()); len(got) != 0 {
		t.Errorf("restartKeys(same) = %q, want none", got)
	}
}

// TestLiveLevel: a reload's level applies to loggers derived before it.
func TestLiveLevel(t *testing.T) {
	var out bytes.Buffer
	log, level := liveLevel(zerolog.New(&out), LogConfig{Level: "info"})
	child := log.With().Str("component", "x").Logger()
	child.Debug().Msg("hidden")
	level.set(LogConfig{Level: "debug"})
	child.Debug().Msg("shown")
	level.set(LogConfig{Level: "error"})
	child.Warn().Msg("dropped")
	if got := out.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "shown") || strings.Contains(got, "dropped") {
		t.Errorf("log = %q, want only the debug line written while the level was debug", got)
	}
}

// TestLiveAccess: log.access turns the access log on and off at once,
// and the access log keeps the process's level.
func TestLiveAccess(t *testing.T) {
	var out bytes.Buffer
	log, level := liveLevel(zerolog.New(&out), LogConfig{Level: "info", Access: false})
	access := level.accessLog(log)
	access.Info().Msg("access-off")
	log.Info().Msg("process")
	level.set(LogConfig{Level: "info", Access: true})
	access.Info().Msg("access-on")
	level.set(LogConfig{Level: "warn", Access: true})
	access.Info().Msg("access-below")
	got := out.String()
	if strings.Contains(got, "access-off") || !strings.Contains(got, "process") || !strings.Contains(got, "access-on") || strings.Contains(got, "access-below") {
		t.Errorf("log = %q, want the process line and the access line written while access was on at info", got)
	}
}

// TestReload: a reload's [gc] settings and interval, retention rules and
// rate limits apply at once, and a refused file changes nothing.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	store, err := storage.Open(t.Context(), storage.Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	path := filepath.Join(dir, "nora.toml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte("[storage]\nroot = \""+root+"\"\n"+s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[gc]\ninterval = \"0\"\n")
	f, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	m, stop, err := startMaintenance(ctx, f, store, nil, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	la, err := newLiveAuth(f, auth.NewRobots(store), nil, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	_, level := liveLevel(zerolog.Nop(), f.Log)
	r := &reloader{path: path, auth: la, maint: m, level: level, log: zerolog.Nop(), cur: f}

	write("[gc]\ninterval = \"7d\"\ngrace = \"2h\"\n[retention]\n[[retention.rules]]\nrepositories = [\"**\"]\nkeep_last = 3\n")
	if restart, err := r.reload(); err != nil || len(restart) != 0 {
		t.Fatalf("reload = %q, %v", restart, err)
	}
	if s := m.settings.Load(); s.gc.Options().Grace != 2*time.Hour || !s.hasRules {
		t.Errorf("settings after reload = %+v, want grace 2h and rules", s.gc)
	}
	for deadline := time.Now().Add(5 * time.Second); m.next.Load() == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if next := time.Unix(0, m.next.Load()); time.Until(next) < 6*24*time.Hour {
		t.Errorf("next pass at %v, want about 7 days away", next)
	}

	// Rate limits apply to the next request.
	h := la.middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	status := func() int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/v2/", nil))
		return w.Code
	}
	if a, b := status(), status(); a != http.StatusNoContent || b != http.StatusNoContent {
		t.Fatalf("requests before the limit = %d, %d, want 204s", a, b)
	}
	write("[gc]\ninterval = \"7d\"\ngrace = \"2h\"\n[rate_limit]\nenabled = true\n[rate_limit.api]\nper_ip = 0.001\nburst = 1\n")
	if _, err := r.reload(); err != nil {
		t.Fatal(err)
	}
	if a, b := status(), status(); a != http.StatusNoContent || b != http.StatusTooManyRequests {
		t.Errorf("requests after a reload limiting them = %d, %d, want 204 then 429", a, b)
	}

	write("[gc]\ngrace = \"soon\"\n")
	if _, err := r.reload(); err == nil || !strings.Contains(err.Error(), `gc.grace: invalid duration "soon"`) {
		t.Errorf("reload(bad grace) = %v, want the problem", err)
	}
	if s := m.settings.Load(); s.gc.Options().Grace != 2*time.Hour {
		t.Errorf("grace after a refused reload = %v, want 2h kept", s.gc.Grace)
	}
}

// BenchmarkLiveMiddleware measures what the swappable auth state adds to
// a request, next to the same handler called directly.
func BenchmarkLiveMiddleware(b *testing.B) {
	f := DefaultFile()
	f.RateLimit.Enabled = false
	la, err := newLiveAuth(f, nil, nil, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	r := httptest.NewRequest("GET", "/v2/", nil)
	w := httptest.NewRecorder()
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"direct", next}, {"live", la.middleware(next)}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}
