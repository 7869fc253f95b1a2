package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// slowIdle is server.body_idle_timeout in TestE2ESlowClients.
const slowIdle = 2 * time.Second

// TestE2ESlowClients: 2,000 connections from one address announce a body
// and stall, on the token endpoints and on /v2/ routes they may not use.
// The server takes only max_connections_per_client of them, answers the
// refused requests without reading their bodies, cuts the stalled body
// it reads after body_idle_timeout, and meanwhile serves a client on
// another address with sub-second latency. An upload that keeps moving
// survives longer than the idle timeout; one that stalls is cut.
func TestE2ESlowClients(t *testing.T) {
	alice, _ := bcrypt.GenerateFromPassword([]byte("alice-secret"), bcrypt.MinCost)
	s := startServerConfig(t, fmt.Sprintf(`body_idle_timeout = %q
max_connections = 1000
max_connections_per_client = 100
`, slowIdle), fmt.Sprintf(`
[auth]
anonymous = ["pull:public/**"]

[[auth.users]]
name = "alice"
password = %q

[[auth.rules]]
users = ["alice"]
permissions = ["*:**"]
`, alice))
	img := ociImage(t)
	if err := remote.Write(s.ref(t, "public/app:v1"), img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})); err != nil {
		t.Fatalf("push public/app:v1 = %v", err)
	}

	start := time.Now()
	stalled := stallBodies(t, s.host(), 2000)
	t.Logf("2000 stalled bodies sent from 127.0.0.2 in %v", time.Since(start).Round(time.Millisecond))

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); slowUpload(t, s, 300*time.Millisecond) }()
	go func() { defer wg.Done(); stalledUpload(t, s) }()
	stop := time.Now().Add(slowIdle + 3*time.Second)
	worst, n := pullUntil(t, s, img, stop)
	wg.Wait()
	t.Logf("normal client: %d pulls, slowest %v", n, worst.Round(time.Millisecond))
	if worst > time.Second {
		t.Errorf("slowest pull from 127.0.0.1 with 2000 stalled bodies open = %v, want under 1s", worst)
	}

	if open := stalled(stop.Add(2 * time.Second)); open > 0 {
		t.Errorf("%d of 2000 stalled connections still open %v after they stalled, want 0 (body_idle_timeout %v)", open, time.Since(start).Round(time.Second), slowIdle)
	}
	resp, body := s.do(t, http.MethodGet, "/metrics", nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("nora_http_connections_refused_total")) ||
		bytes.Contains(body, []byte("nora_http_connections_refused_total 0\n")) {
		t.Errorf("/metrics does not count the refused connections")
	}
}

// stallBodies opens n connections from 127.0.0.2, each sending a request
// that announces a 200,000-byte body, then one byte of it, then nothing.
// The returned function waits until deadline for the server to close them
// and returns how many are still open.
func stallBodies(t *testing.T, addr string, n int) func(deadline time.Time) int {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	targets := []string{
		"POST /auth/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n",
		"POST /auth/oidc/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n",
		"PUT /v2/team/app/manifests/v1 HTTP/1.1\r\n",
		"PATCH /v2/team/app/blobs/uploads/x HTTP/1.1\r\n",
		"PUT /v2/nowhere HTTP/1.1\r\n",
	}
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var lastErr atomic.Value
	for w := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 50 {
				c, err := d.Dial("tcp", addr)
				if err != nil {
					failed.Add(1)
					lastErr.Store(err)
					continue
				}
				conns[i] = c
				// A refused connection may already be reset: write errors
				// are what the client would see, not a test failure.
				fmt.Fprintf(c, "%sHost: %s\r\nContent-Length: 200000\r\n\r\nx", targets[i%len(targets)], addr)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		// The server closing connections over its cap resets some
		// before the handshake ends.
		t.Logf("%d dials from 127.0.0.2 failed, the last with %v", f, lastErr.Load())
	}
	return func(deadline time.Time) int {
		var open atomic.Int64
		var wg sync.WaitGroup
		for _, c := range conns {
			if c == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetReadDeadline(deadline)
				_, err := io.Copy(io.Discard, c)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					open.Add(1)
				}
			}()
		}
		wg.Wait()
		return int(open.Load())
	}
}

// pullUntil pulls public/app:v1 from 127.0.0.1 anonymously, manifest and
// config blob, until stop, and returns the slowest pull and the count.
func pullUntil(t *testing.T, s *e2eServer, img interface{ RawManifest() ([]byte, error) }, stop time.Time) (time.Duration, int) {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	d := sha256of(raw)
	c := &http.Client{Timeout: 10 * time.Second}
	var worst time.Duration
	n := 0
	for time.Now().Before(stop) {
		began := time.Now()
		for _, p := range []string{"/healthz", "/v2/public/app/manifests/v1", "/v2/public/app/manifests/" + d} {
			req, _ := http.NewRequest(http.MethodGet, s.url(p), nil)
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("GET %s = %v", p, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %s, want 200", p, resp.Status)
			}
		}
		worst = max(worst, time.Since(began))
		n++
		time.Sleep(20 * time.Millisecond)
	}
	return worst, n
}

// trickle is a body that sends one piece every gap.
type trickle struct {
	pieces [][]byte
	gap    time.Duration
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.pieces) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.gap)
	n := copy(p, r.pieces[0])
	if r.pieces[0] = r.pieces[0][n:]; len(r.pieces[0]) == 0 {
		r.pieces = r.pieces[1:]
	}
	return n, nil
}

// slowUpload pushes a blob in pieces gap apart, over longer than the idle
// timeout: the upload must succeed.
func slowUpload(t *testing.T, s *e2eServer, gap time.Duration) {
	blob := randomBytes(t, 16<<10)
	var pieces [][]byte
	for i := 0; i < len(blob); i += 1 << 10 {
		pieces = append(pieces, blob[i:i+1<<10])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url("/v2/public/slow/blobs/uploads/?digest="+sha256of(blob)), &trickle{pieces: pieces, gap: gap})
	req.ContentLength = int64(len(blob))
	req.SetBasicAuth("alice", "alice-secret")
	began := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("upload of 16 KiB over %v = %v, want 201", time.Since(began).Round(time.Millisecond), err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("upload of 16 KiB over %v = %s, want 201", time.Since(began).Round(time.Millisecond), resp.Status)
	}
}

// stalledUpload sends part of a blob and stops: the server must end the
// request about body_idle_timeout later.
func stalledUpload(t *testing.T, s *e2eServer) {
	blob := randomBytes(t, 16<<10)
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(blob[:1000])
	ctx, cancel := context.WithTimeout(context.Background(), slowIdle+5*time.Second)
	defer cancel()
	// The transport waits for the body it is sending: end it with ctx.
	context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url("/v2/public/stall/blobs/uploads/?digest="+sha256of(blob)), pr)
	req.ContentLength = int64(len(blob))
	req.SetBasicAuth("alice", "alice-secret")
	began := time.Now()
	resp, err := http.DefaultClient.Do(req)
	took := time.Since(began)
	if ctx.Err() != nil {
		t.Errorf("stalled upload still running after %v, want it cut after body_idle_timeout (%v)", took.Round(time.Millisecond), slowIdle)
		return
	}
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("stalled upload = %s, want an error", resp.Status)
		}
	}
	if took < slowIdle-100*time.Millisecond {
		t.Errorf("stalled upload cut after %v, before body_idle_timeout (%v)", took, slowIdle)
	}
	t.Logf("stalled upload cut after %v: %v", took.Round(time.Millisecond), errors.Join(err, statusErr(resp, err)))
}

func statusErr(resp *http.Response, err error) error {
	if err != nil || resp == nil {
		return nil
	}
	return errors.New(resp.Status)
}
