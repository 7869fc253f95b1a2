package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/gc"
	"github.com/nora-registry/nora/storage"
	"github.com/nora-registry/nora/ui"
)

// A GC pass run from the command line, with no server, is in the record
// of passes the dashboard shows, and so is what it freed.
func TestCLIPassIsRecorded(t *testing.T) {
	root := t.TempDir()
	createStore(t, root)
	cfg := filepath.Join(t.TempDir(), "nora.toml")
	if err := os.WriteFile(cfg, []byte("[storage]\nroot = \""+root+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmdSay(t, "gc", "-c", cfg); err != nil {
		t.Fatal(err)
	}
	s, err := storage.Open(t.Context(), storage.Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	passes, err := s.ListPasses(t.Context())
	if err != nil || len(passes) != 1 || passes[0].Kind != "gc" || passes[0].By != byCLI {
		t.Fatalf("ListPasses = %+v, %v; want one gc pass by cli", passes, err)
	}
}

// What GC could free is measured when first asked for, split into what a
// pass frees now and what only the grace period keeps, and measured anew
// after a pass.
func TestReclaimable(t *testing.T) {
	s, err := storage.Open(t.Context(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := []byte("a layer no manifest refers to")
	if _, err := s.PutBlob(t.Context(), "app", digest.FromBytes(data), int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	f := File{GC: gc.DefaultConfig()}
	m, err := newMaintenance(f, s, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r := waitReclaimable(t, m, nil)
	if r.Bytes != 0 || r.WaitingBytes != int64(len(data)) || !r.CollectableBy.Equal(r.MeasuredAt.Add(time.Hour)) {
		t.Errorf("reclaimable = %+v, want 0 now, %d waiting for an hour", *r, len(data))
	}
	// A pass with no grace period frees it; the next look measures again.
	now := *m.settings.Load()
	now.gc.Grace = "0s"
	m.reconfigure(&now)
	if err := m.gc(t.Context(), byCLI, false, false, 1, quiet); err != nil {
		t.Fatal(err)
	}
	if r = waitReclaimable(t, m, r); r.Bytes != 0 || r.WaitingBytes != 0 {
		t.Errorf("reclaimable after the pass = %+v, want nothing", *r)
	}
}

// waitReclaimable asks until a measure other than prev comes.
func waitReclaimable(t *testing.T, m *maintenance, prev *ui.Reclaimable) *ui.Reclaimable {
	t.Helper()
	for range 500 {
		if r := m.reclaimable(context.Background()); r != nil && r != prev {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no measure of what GC could free came")
	return nil
}
