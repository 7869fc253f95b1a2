package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nora-registry/nora/storage"
)

// syncBuffer is a bytes.Buffer safe for the server's log writes and the
// test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// waitLog polls the JSON log for a line with message msg and returns it.
func (b *syncBuffer) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		lines := strings.Split(b.buf.String(), "\n")
		b.mu.Unlock()
		for _, l := range lines {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["message"] == msg {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t.Fatalf("no %q log line after 10s; log:\n%s", msg, b.buf.String())
	return nil
}

// TestServe runs `registry serve` in-process: it answers on the port it
// logs, serves metrics, lets an in-flight upload finish after the stop
// signal, and closes the store on the way out.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	config := filepath.Join(dir, "nora.toml")
	err := os.WriteFile(config, fmt.Appendf(nil, `
[server]
listen = "127.0.0.1:0"
shutdown_timeout = "10s"
[storage]
root = %q
[log]
format = "json"
`, root), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	cmd := NewRoot()
	logs := &syncBuffer{}
	cmd.SetErr(logs)
	cmd.SetArgs([]string{"serve", "--config", config})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	started := logs.waitLog(t, "listening")
	addr, _ := started["addr"].(string)
	for k, want := range map[string]any{"version": "dev", "tls": false, "auth": false, "storage": "filesystem", "root": root, "gc": "every 6h"} {
		if started[k] != want {
			t.Errorf("listening line %s = %v, want %v", k, started[k], want)
		}
	}
	base := "http://" + addr
	if body := get(t, base+"/healthz", http.StatusOK); body != "ok\n" {
		t.Errorf("GET /healthz = %q, want ok", body)
	}
	metrics := get(t, base+"/metrics", http.StatusOK)
	for _, want := range []string{`nora_http_requests_total{code="200",method="GET",route="/healthz"} 1`, "nora_storage_blobs 0", "nora_storage_metadata_bytes ",
		`nora_build_info{commit="dev",go="` + runtime.Version() + `",version="dev"} 1`, "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("GET /metrics has no %q", want)
		}
	}

	// Start an upload and stop the server halfway through its body.
	resp, err := http.Post(base+"/v2/test/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	location := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || location == "" {
		t.Fatalf("POST upload = %d, Location %q, want 202 and a Location", resp.StatusCode, location)
	}
	if strings.HasPrefix(location, "/") {
		location = base + location
	}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPatch, location, pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	patched := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(patched)
			return
		}
		resp.Body.Close()
		patched <- resp
	}()
	pw.Write([]byte("first half, "))
	time.Sleep(100 * time.Millisecond) // the handler is now reading the body

	cancel()
	logs.waitLog(t, "shutting down")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			break // no longer accepting
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("GET /healthz still answered 5s after shutdown began")
		}
	}
	pw.Write([]byte("second half"))
	pw.Close()
	if resp, ok := <-patched; !ok || resp.StatusCode != http.StatusAccepted {
		t.Errorf("in-flight PATCH during shutdown = %v, want 202", resp)
	}

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve = %v, want nil after a clean shutdown", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve still running 15s after cancel")
	}
	logs.waitLog(t, "stopped")

	// A clean close released the bbolt lock.
	store, err := storage.Open(t.Context(), storage.Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatalf("reopening the store after shutdown: %v", err)
	}
	store.Close()
}

func get(t *testing.T, url string, wantStatus int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s = %d, want %d: %s", url, resp.StatusCode, wantStatus, body)
	}
	return string(body)
}
