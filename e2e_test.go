package main

// End-to-end tests: they build the real `registry` binary once, start it
// with `registry serve --config FILE` on 127.0.0.1 and drive it over HTTP
// with real clients (go-containerregistry, skopeo, podman, containerd,
// regctl). This file holds the harness; the tests live in e2e_*_test.go.
//
// NORA_E2E_BINARY=/path/to/registry tests a prebuilt binary instead of
// building one; NORA_E2E_RACE=1 builds it with the race detector, so a
// race in the server under real clients fails the test that stops it
// (the process exits 66). NORA_E2E_STORAGE=s3 runs every test with blobs
// on S3: a versitygw server per test (see storage/s3test). -short skips
// every end-to-end test.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nora-registry/nora/storage"
	"github.com/nora-registry/nora/storage/s3test"
)

// registryBin is the binary under test; buildErr says why there is none.
var (
	registryBin string
	buildErr    error
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "nora-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if !testing.Short() {
		registryBin, buildErr = buildRegistry(dir)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildRegistry builds the module's main package into dir, once for the
// whole run, so every test exercises the binary users get.
func buildRegistry(dir string) (string, error) {
	if b := os.Getenv("NORA_E2E_BINARY"); b != "" {
		return b, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "registry")
	args := []string{"build", "-o", bin}
	if os.Getenv("NORA_E2E_RACE") != "" {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s . = %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// inCI reports whether the tests run in CI, where a missing client tool
// is a failure rather than a reason to skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// needTool returns the path of an external client, or skips (locally) or
// fails (in CI) with how to install it.
func needTool(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if inCI() {
		t.Fatalf("exec.LookPath(%q) = %v; install it: %s", name, err, hint)
	}
	t.Skipf("%s not found (%v); install it to run this test: %s", name, err, hint)
	return ""
}

// e2eServer is one registry process over a data directory that outlives
// restarts.
type e2eServer struct {
	t       *testing.T
	dataDir string
	config  string // path of the TOML file

	mu   sync.Mutex
	cmd  *exec.Cmd
	addr string   // host:port of the running process
	logs []string // stderr lines of every run, in order
	done chan struct{}
	err  error // cmd.Wait's result once done is closed

	s3 *s3test.Server // the blob store, under NORA_E2E_STORAGE=s3

	// exe runs the binary, before "serve --config …": registryBin, or
	// another build under an emulator (TestE2EArmv7). Set before start.
	exe []string
}

// e2eStorage is the blob backend the end-to-end tests run on:
// "filesystem" or "s3".
func e2eStorage() string {
	if os.Getenv("NORA_E2E_STORAGE") == "s3" {
		return "s3"
	}
	return "filesystem"
}

// startServer starts a registry on a fresh data dir and stops it when the
// test ends.
func startServer(t *testing.T) *e2eServer {
	t.Helper()
	return startServerWith(t, "")
}

// startServerWith is startServer with extra TOML sections in the config.
func startServerWith(t *testing.T, extra string) *e2eServer {
	t.Helper()
	return startServerConfig(t, "", extra)
}

// startServerConfig is startServerWith with extra keys in [server] too.
func startServerConfig(t *testing.T, server, extra string) *e2eServer {
	t.Helper()
	return startServerIn(t, t.TempDir(), server, extra)
}

// startServerIn is startServerConfig with the config and the data
// directory in dir.
func startServerIn(t *testing.T, dir, server, extra string) *e2eServer {
	t.Helper()
	return startServerExe(t, dir, server, extra, nil)
}

// startServerExe is startServerIn with the command that runs the binary
// (nil: registryBin).
func startServerExe(t *testing.T, dir, server, extra string, exe []string) *e2eServer {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	if buildErr != nil {
		t.Fatalf("building the registry binary: %v", buildErr)
	}
	s := &e2eServer{t: t, dataDir: filepath.Join(dir, "data"), config: filepath.Join(dir, "nora.toml"), exe: exe}
	store := fmt.Sprintf("[storage]\ndriver = \"filesystem\"\nroot = %q\n", s.dataDir)
	if e2eStorage() == "s3" {
		s.s3 = s3test.Start(t)
		store = s.s3.TOML(s.dataDir)
	}
	cfg := `[server]
listen = "127.0.0.1:0"
` + server + `
[log]
format = "json"
level = "info"

` + store + extra
	// Durable, as a configuration file written long before the server
	// started is (TestE2EPowerLoss).
	if err := storage.WriteFileDurable(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.running() {
			s.stop()
		}
		if t.Failed() {
			s.dumpLogs()
		}
	})
	s.start()
	return s
}

func (s *e2eServer) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// start runs `registry serve --config` and waits until it listens and
// answers /healthz.
func (s *e2eServer) start() {
	t := s.t
	t.Helper()
	exe := s.exe
	if exe == nil {
		exe = []string{registryBin}
	}
	cmd := exec.Command(exe[0], append(exe[1:], "serve", "--config", s.config)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s serve = %v", strings.Join(exe, " "), err)
	}
	done := make(chan struct{})
	addrc := make(chan string, 1)
	s.mu.Lock()
	s.cmd, s.addr, s.done = cmd, "", done
	s.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs = append(s.logs, line)
			s.mu.Unlock()
			if addr := listenAddr(line); addr != "" {
				select {
				case addrc <- addr:
				default:
				}
			}
		}
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(done)
	}()

	select {
	case addr := <-addrc:
		s.mu.Lock()
		s.addr = addr
		s.mu.Unlock()
	case <-done:
		t.Fatalf("registry serve exited before listening: %v", s.err)
	case <-time.After(20 * time.Second):
		s.kill()
		t.Fatalf("registry serve did not log a \"listening\" line with addr within 20s")
	}
	s.waitHealthy(10 * time.Second)
}

// listenAddr returns the addr field of the JSON line announcing the
// listener, or "".
func listenAddr(line string) string {
	if !strings.Contains(line, "listening") {
		return ""
	}
	var f map[string]any
	if json.Unmarshal([]byte(line), &f) != nil {
		return ""
	}
	addr, _ := f["addr"].(string)
	return addr
}

func (s *e2eServer) waitHealthy(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get(s.url("/healthz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("GET /healthz did not answer 200 within %v: last %s", timeout, last)
}

// stop sends SIGTERM and requires a clean exit (status 0) within 20s.
func (s *e2eServer) stop() {
	t := s.t
	t.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	// Connections a client dialed but never used count as busy for 5s in
	// a graceful shutdown; close ours so stopping takes no longer than
	// the server's own work.
	http.DefaultClient.CloseIdleConnections()
	remote.DefaultTransport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM registry = %v", err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.kill()
		t.Errorf("registry did not exit within 20s of SIGTERM")
		return
	}
	s.mu.Lock()
	err := s.err
	s.cmd = nil
	s.mu.Unlock()
	if err != nil {
		t.Errorf("registry exit after SIGTERM = %v, want exit status 0", err)
	}
}

func (s *e2eServer) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-done
	}
}

// restart stops the process and starts a new one on the same data dir.
// The new process may listen on another port: use host() afresh.
func (s *e2eServer) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

// host is host:port of the running registry, as image references use it.
func (s *e2eServer) host() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *e2eServer) url(path string) string { return "http://" + s.host() + path }

// logLines returns the JSON log lines written so far, decoded; lines that
// are not JSON are skipped. It first waits out the server's log batching:
// lines logged during requests are written within 100 ms.
func (s *e2eServer) logLines() []map[string]any {
	time.Sleep(150 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range s.logs {
		var f map[string]any
		if json.Unmarshal([]byte(l), &f) == nil {
			out = append(out, f)
		}
	}
	return out
}

func (s *e2eServer) dumpLogs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	logs := s.logs
	if len(logs) > 200 {
		logs = logs[len(logs)-200:]
	}
	s.t.Logf("registry log (last %d lines):\n%s", len(logs), strings.Join(logs, "\n"))
}

// do sends one plain HTTP request to the registry and returns the response
// with its body read.
func (s *e2eServer) do(t *testing.T, method, path string, hdr http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !strings.HasPrefix(path, "http") {
		path = s.url(path)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s = %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

func sha256of(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func sha512of(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512:" + hex.EncodeToString(sum[:])
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// octet is the header of an n-byte chunk; net/http sets Content-Length
// from the body itself.
func octet(n int) http.Header {
	return http.Header{"Content-Type": {"application/octet-stream"}}
}

func withQuery(loc, k, v string) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + k + "=" + url.QueryEscape(v)
}

// runTool executes an external client with a deadline and returns its
// standard output, failing the test with both outputs when it exits
// non-zero.
func runTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after 3m)", err)
	}
	if err != nil {
		t.Fatalf("%s %s = %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, &stdout, &stderr)
	}
	return stdout.String()
}

// TestE2EServeLifecycle checks the harness's own promises (the binary
// serves /healthz and /v2/ and stops cleanly on SIGTERM) and that what was
// pushed survives a restart on the same data dir.
func TestE2EServeLifecycle(t *testing.T) {
	s := startServer(t)
	for _, path := range []string{"/healthz", "/v2/"} {
		if resp, _ := s.do(t, http.MethodGet, path, nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %s, want 200", path, resp.Status)
		}
	}
	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "persist/app:v1"), img); err != nil {
		t.Fatalf("remote.Write(persist/app:v1) = %v", err)
	}

	s.restart()
	if resp, _ := s.do(t, http.MethodGet, "/v2/", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ after restart = %s, want 200", resp.Status)
	}
	ref := s.ref(t, "persist/app:v1")
	pullWhole(t, ref, img) // after the restart
	repos, err := remote.Catalog(context.Background(), ref.Context().Registry)
	if err != nil || fmt.Sprint(repos) != "[persist/app]" {
		t.Errorf("remote.Catalog() after restart = %v, %v, want [persist/app]", repos, err)
	}
}
