//go:build bench && linux

package main

import (
	"bufio"
	"context"
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

// build builds the binary as `make build` does: static, without cgo, with
// trimmed paths, stripped. NORA_BENCH_BINARY=/path/to/registry measures a prebuilt
// binary instead, for instance one built with other flags.
func (b *benchRun) build() string {
	if bin := os.Getenv("NORA_BENCH_BINARY"); bin != "" {
		return bin
	}
	return b.goBuild(".", "registry")
}

// goBuild builds package pkg as `make build` does: static, without cgo,
// with trimmed paths, stripped; it returns the binary's path.
func (b *benchRun) goBuild(pkg, name string) string {
	bin := filepath.Join(b.dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("CGO_ENABLED=0 go build -trimpath -ldflags=\"-s -w\" -o %s %s = %v\n%s", bin, pkg, err, out)
	}
	return bin
}

// benchProc is one running `registry serve`.
type benchProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	base    string        // http://127.0.0.1:port
	firstOK time.Duration // from exec to the first 200 on /v2/
	done    chan struct{}
	log     string // the file its standard error goes to
}

// startProc starts the binary on dataDir and returns once GET /v2/ has
// answered 200. It logs at the default level, info, as a user's server
// does: an access line per request, to a file (NORA_BENCH_LOG_LEVEL sets
// another level, e.g. warn to leave the access lines out).
func (b *benchRun) startProc(dataDir string) *benchProc {
	return b.startProcWith(dataDir, fmt.Sprintf("[storage]\ndriver = \"filesystem\"\nroot = %q\n", filepath.Join(dataDir, "data")))
}

// startProcWith is startProc with the given [storage] section.
func (b *benchRun) startProcWith(dataDir, storage string) *benchProc {
	t := b.t
	t.Helper()
	addr := benchFreeAddr(t)
	cfg := filepath.Join(dataDir, "nora.toml")
	toml := fmt.Sprintf(`[server]
listen = %q

[log]
format = "json"
level = %q

`, addr, benchLogLevel()) + storage
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return b.launch(addr, exec.Command(b.bin, "serve", "--config", cfg))
}

// benchLogLevel is the servers' log level: NORA_BENCH_LOG_LEVEL, or info,
// the default.
func benchLogLevel() string {
	if l := os.Getenv("NORA_BENCH_LOG_LEVEL"); l != "" {
		return l
	}
	return "info"
}

// launch starts cmd, a server that will listen on addr, and returns once
// GET /v2/ has answered 200, polled every millisecond from exec on, as a
// supervisor's readiness check would.
func (b *benchRun) launch(addr string, cmd *exec.Cmd) *benchProc {
	t := b.t
	t.Helper()
	p := &benchProc{t: t, cmd: cmd, base: "http://" + addr, done: make(chan struct{})}
	f, err := os.CreateTemp(b.dir, "server-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.log, p.cmd.Stderr = f.Name(), f
	t0 := time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s = %v", p.cmd, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)

	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := t0.Add(10 * time.Second)
	for {
		resp, err := probe.Get(p.base + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.firstOK = time.Since(t0)
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before answering /v2/: %v\n%s", p.cmd, p.cmd.ProcessState, strings.Join(p.warnings(), "\n"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s/v2/ did not answer 200 within 10s: %v", p.base, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// warnings returns the first lines the process logged at warn and above,
// and any that is not a JSON log line (a panic).
func (p *benchProc) warnings() []string {
	f, err := os.Open(p.log)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var w []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && len(w) < 100 {
		l := sc.Text()
		if !strings.HasPrefix(l, "{") || strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) {
			w = append(w, l)
		}
	}
	return w
}

// stop notes what the process logged at warn and above, then sends
// SIGTERM and waits for the exit.
func (p *benchProc) stop() {
	if w := p.warnings(); len(w) > 0 {
		p.t.Logf("server logged %d warnings or errors; first: %s", len(w), w[0])
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("registry serve did not exit within 20s of SIGTERM")
		p.kill()
	}
}

func (p *benchProc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

// status reads one kB field of /proc/PID/status, in bytes.
func (p *benchProc) status(field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				p.t.Fatalf("/proc status %s: %q", field, line)
			}
			return kb << 10
		}
	}
	p.t.Fatalf("/proc status has no %s", field)
	return 0
}

func (p *benchProc) rss() int64 { return p.status("VmRSS") }

// cpu returns the CPU time the process has used so far.
func (p *benchProc) cpu() time.Duration { return benchCPU(p.t, p.cmd.Process.Pid) }

// benchCPU returns the user and system CPU time process pid has used, in
// clock ticks of 10 ms (USER_HZ is 100 on Linux), from /proc/PID/stat.
func benchCPU(t *testing.T, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name, field 2, may hold spaces: count from its ")".
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// benchSteal counts the machine's CPU time, all of it and the part the
// hypervisor gave to other guests (steal), from /proc/stat. On a shared
// virtual machine that part moves from second to second, and a server
// measured while it is high looks slower than it is: the phases that
// compare the registry with the ceiling report it for the rounds of each.
type benchSteal struct{ steal, total int64 }

func readBenchSteal() benchSteal {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return benchSteal{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	// cpu user nice system idle iowait irq softirq steal ...
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return benchSteal{}
	}
	var s benchSteal
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return benchSteal{}
		}
		s.total += n
		if i == 7 {
			s.steal = n
		}
	}
	return s
}

// add accumulates the time between from and to.
func (s *benchSteal) add(from, to benchSteal) {
	s.steal += to.steal - from.steal
	s.total += to.total - from.total
}

// share is the stolen part of the time s holds.
func (s benchSteal) share() float64 {
	if s.total <= 0 {
		return 0
	}
	return float64(s.steal) / float64(s.total)
}

// stealRow reports the CPU time stolen during the registry's rounds and
// during the ceiling's.
func (b *benchRun) stealRow(s [2]benchSteal) {
	pct := func(s benchSteal) string { return fmt.Sprintf("%.0f%%", 100*s.share()) }
	b.rep.text("  CPU stolen by the hypervisor meanwhile", pct(s[0]), pct(s[1]))
}

// watchRSS resets the process's high-water mark and samples VmRSS every
// 50 ms until the returned function is called; that function returns the
// largest sample and VmHWM since the reset.
func (p *benchProc) watchRSS() (stop func() (sampled, hwm int64)) {
	// "5" resets VmHWM to the current RSS (proc(5), clear_refs).
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0); err != nil {
		p.t.Logf("cannot reset VmHWM (%v): peak RSS covers the whole process life", err)
	}
	quit, res := make(chan struct{}), make(chan int64)
	go func() {
		peak := p.rss()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				peak = max(peak, p.rss())
			case <-quit:
				res <- max(peak, p.rss())
				return
			}
		}
	}()
	return func() (int64, int64) {
		close(quit)
		s := <-res
		return s, p.status("VmHWM")
	}
}

// benchFreeAddr returns a loopback address with a port free right now.
func benchFreeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
