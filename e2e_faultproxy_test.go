package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultKind is what a faultProxy does to the requests its fault matches.
type faultKind int

const (
	// faultPass forwards requests and answers unchanged.
	faultPass faultKind = iota
	// faultCut sends the first after bytes of a body, then closes
	// the connection.
	faultCut
	// faultStall sends the first after bytes of a body, then holds
	// the rest until the fault changes or the client leaves.
	faultStall
	// faultCorrupt flips the bits of byte after of a body.
	faultCorrupt
	// faultStatus answers status itself, with Retry-After: 1 on a 429,
	// without asking the upstream.
	faultStatus
)

// fault is a faultProxy's behaviour for requests whose path contains
// match ("" matches every path). Body faults apply to GETs only, at byte
// after of the body.
type fault struct {
	kind   faultKind
	match  string
	after  int64
	status int
}

// faultProxy is a reverse proxy in front of an upstream registry that
// counts the requests it receives, by method and path, and injects one
// fault at a time into what it forwards.
type faultProxy struct {
	t      *testing.T
	target string // the upstream's base URL
	srv    *httptest.Server
	tr     *http.Transport

	mu      sync.Mutex
	fault   fault
	changed chan struct{} // closed and replaced by set, which ends stalls
	counts  map[string]int
	stalled chan string // the path of each request that starts stalling
}

// startFaultProxy starts a proxy to up that passes everything until set
// says otherwise, and stops it when the test ends.
func startFaultProxy(t *testing.T, up *e2eServer) *faultProxy {
	p := &faultProxy{t: t, target: up.url(""), tr: &http.Transport{}, changed: make(chan struct{}),
		counts: map[string]int{}, stalled: make(chan string, 100)}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.set(fault{})
		p.srv.Close()
		p.tr.CloseIdleConnections()
	})
	return p
}

// host is the proxy's host:port, for a cache's upstream url.
func (p *faultProxy) host() string { return strings.TrimPrefix(p.srv.URL, "http://") }

// set makes f the fault from now on; requests stalled by the previous
// one are cut if f cuts them, else send the rest of their body unchanged.
func (p *faultProxy) set(f fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
	close(p.changed)
	p.changed = make(chan struct{})
}

// count returns how many method requests for path the proxy received.
func (p *faultProxy) count(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method+" "+path]
}

// snapshot returns the counts so far, by "METHOD path".
func (p *faultProxy) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// waitStalled waits until a request starts stalling and returns its path.
func (p *faultProxy) waitStalled() string {
	p.t.Helper()
	select {
	case path := <-p.stalled:
		return path
	case <-time.After(30 * time.Second):
		p.t.Fatal("no request stalled at the proxy within 30s")
		return ""
	}
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.counts[r.Method+" "+r.URL.Path]++
	f, changed := p.fault, p.changed
	p.mu.Unlock()
	if !strings.Contains(r.URL.Path, f.match) {
		f = fault{}
	}
	if f.kind == faultStatus {
		if f.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		io.WriteString(w, `{"errors":[{"code":"UNKNOWN","message":"fault injected by the test proxy"}]}`)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.ContentLength = r.ContentLength
	resp, err := p.tr.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodGet || f.kind == faultPass {
		io.Copy(w, resp.Body)
		return
	}
	p.faultBody(w, r, resp.Body, f, changed)
}

// faultBody copies body to w with fault f applied at byte f.after.
func (p *faultProxy) faultBody(w http.ResponseWriter, r *http.Request, body io.Reader, f fault, changed chan struct{}) {
	if _, err := io.CopyN(w, body, f.after); err != nil {
		return
	}
	w.(http.Flusher).Flush()
	switch f.kind {
	case faultCut:
		panic(http.ErrAbortHandler)
	case faultStall:
		p.stalled <- r.URL.Path
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
		p.mu.Lock()
		next := p.fault
		p.mu.Unlock()
		if next.kind == faultCut && strings.Contains(r.URL.Path, next.match) {
			panic(http.ErrAbortHandler)
		}
	case faultCorrupt:
		b := make([]byte, 1)
		if _, err := io.ReadFull(body, b); err != nil {
			return
		}
		w.Write([]byte{^b[0]})
	}
	io.Copy(w, body)
}
