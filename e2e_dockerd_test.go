package main

// The docker harness: one private dockerd (Debian's docker.io package) as
// the test's child, as root, on the vfs driver, with no network set up,
// its own data, exec root, containerd and daemon.json, driven by the
// docker CLI of the same version.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const dockerHint = "apt-get install -y --no-install-recommends docker.io (or run .ci/run)"

// dockerd is a running private docker daemon and the CLI that talks to it.
type dockerd struct {
	cli string   // path of the docker CLI matching the daemon
	env []string // DOCKER_HOST and DOCKER_CONFIG for the CLI
}

// needDocker returns the paths of dockerd and of the docker CLI of the
// same version (another CLI may come first on PATH), or skips the test
// (fails it in CI) when either is missing or the test is not root.
func needDocker(t *testing.T) (daemon, cli string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if inCI() {
			t.Fatalf("os.Geteuid() = %d, want 0: dockerd needs root in CI", os.Geteuid())
		}
		t.Skip("dockerd needs root; run as root to include it")
	}
	daemon = needTool(t, "dockerd", dockerHint)
	want := dockerVersion(daemon)
	dirs := append(filepath.SplitList(os.Getenv("PATH")), filepath.Dir(daemon), "/usr/bin")
	for _, dir := range dirs {
		p := filepath.Join(dir, "docker")
		if want != "" && dockerVersion(p) == want {
			return daemon, p
		}
	}
	if inCI() {
		t.Fatalf("no docker CLI of version %q (that of %s) on PATH; install it: %s", want, daemon, dockerHint)
	}
	t.Skipf("no docker CLI of version %q (that of %s) on PATH; install it: %s", want, daemon, dockerHint)
	return "", ""
}

// dockerVersion returns X of "Docker version X, build Y", as both the
// daemon and the CLI print it, or "".
func dockerVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return ""
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "Docker version ")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, ",")
	return v
}

// startDockerd runs a private dockerd as the test's child, with
// registry-mirrors set to mirrors, and stops it when the test ends.
func startDockerd(t *testing.T, daemon, cli string, mirrors ...string) *dockerd {
	t.Helper()
	// A unix socket path must stay under ~100 bytes and dockerd puts its
	// containerd's sockets under the exec root: keep it all in a short
	// directory.
	dir, err := os.MkdirTemp("", "dk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing dockerd's directory: %v", err)
		}
	})
	daemonCfg := map[string]any{
		"registry-mirrors":    mirrors,
		"insecure-registries": []string{"127.0.0.0/8"},
	}
	major, _, _ := strings.Cut(dockerVersion(daemon), ".")
	if n, err := strconv.Atoi(major); err == nil && n < 23 {
		// Older daemons write a trust key, by default to
		// /etc/docker/key.json.
		daemonCfg["deprecated-key-path"] = filepath.Join(dir, "key.json")
	}
	cfg, _ := json.Marshal(daemonCfg)
	for name, content := range map[string]string{"daemon.json": string(cfg), "cli/config.json": "{}"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "d.sock")
	args := []string{
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "x"),
		"--pidfile", filepath.Join(dir, "pid"),
		"-H", "unix://" + sock,
		"--storage-driver", "vfs",
		"--iptables=false", "--ip6tables=false", "--bridge=none",
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd = %v", err)
	}
	// done is closed when dockerd has exited, with waitErr set.
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("dockerd did not exit within 20s of SIGTERM")
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("dockerd log:\n%s", b)
		}
	})

	ping := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := ping.Get("http://docker/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("dockerd exited before answering: %v", waitErr) // its log follows
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not answer GET /_ping on %s within 30s", sock)
		}
	}
	ping.CloseIdleConnections()
	return &dockerd{cli: cli, env: []string{"DOCKER_HOST=unix://" + sock, "DOCKER_CONFIG=" + filepath.Join(dir, "cli")}}
}

// try runs the docker CLI with stdin and returns its standard output, its
// standard error and how it exited.
func (d *dockerd) try(stdin string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.cli, args...)
	cmd.Env = append(os.Environ(), d.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after 3m)", err)
	}
	return out.String(), errb.String(), err
}

// run is try that fails the test unless docker exits 0.
func (d *dockerd) run(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errs, err := d.try(stdin, args...)
	if err != nil {
		t.Fatalf("docker %s = %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

// removeImages removes every image the daemon holds, so that the next
// pull fetches every layer.
func (d *dockerd) removeImages(t *testing.T) {
	t.Helper()
	if ids := strings.Fields(d.run(t, "", "images", "--all", "--quiet")); len(ids) > 0 {
		d.run(t, "", append([]string{"rmi", "--force"}, ids...)...)
	}
}
