package cmd

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const testIdle = 200 * time.Millisecond

// guarded serves guardBodies, with idle as its timeout, around a handler
// that reads the whole body, then waits twice testIdle (as a slow commit
// to S3 would) and answers 201 with the byte count, or 400 if the read
// failed; a path of /refuse answers 401 without reading.
func guarded(t *testing.T, idle time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(guardBodies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(2 * testIdle)
		if err := r.Context().Err(); err != nil {
			t.Errorf("request context after the body was read = %v, want nil", err)
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, n)
	}), idle))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// send writes a request announcing length body bytes, then the pieces
// gap apart, and returns the response and how long it took after the
// last piece.
func send(t *testing.T, addr, path string, length int, gap time.Duration, pieces ...string) (*http.Response, string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", path, length)
	for _, p := range pieces {
		time.Sleep(gap)
		io.WriteString(c, p)
	}
	sent := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("PUT %s: reading the response = %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body), time.Since(sent)
}

func TestGuardBodies(t *testing.T) {
	addr := guarded(t, testIdle)

	// Moving: ten pieces half the idle timeout apart, five times longer
	// than it in all; then a handler that outlives the idle timeout.
	resp, body, _ := send(t, addr, "/", 10, testIdle/2, strings.Split("0123456789", "")...)
	if resp.StatusCode != http.StatusCreated || body != "10" {
		t.Errorf("slow, moving body = %s %q, want 201 \"10\"", resp.Status, body)
	}

	// Stalled: cut once idle passes without a byte.
	resp, _, took := send(t, addr, "/", 10, 0, "01234")
	if resp.StatusCode != http.StatusBadRequest || took < testIdle-20*time.Millisecond || took > 5*testIdle {
		t.Errorf("stalled body = %s after %v, want 400 after about %v", resp.Status, took, testIdle)
	}
	if !resp.Close {
		t.Error("answer to a cut body lacks Connection: close")
	}

	// Refused: answered at once, unread, and the connection closed. Its
	// server waits a minute for body bytes: were the rest of the body
	// read, the client's 5 s deadline would end the read first.
	c, err := net.Dial("tcp", guarded(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, err := io.ReadAll(c)
	if took := time.Since(start); err != nil || took > 4*time.Second {
		t.Errorf("refused request: connection closed after %v (%v), want at once", took, err)
	}
	if !strings.HasPrefix(string(all), "HTTP/1.1 401") || !strings.Contains(string(all), "Connection: close") {
		t.Errorf("refused request answered %q, want 401 with Connection: close", all)
	}
}
