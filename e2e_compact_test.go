package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// compactPushers pushes tags of distinct manifests from 8 clients into
// repositories compact/r0 to r15 until ctx ends, and records each tag
// whose PUT was answered 201.
type compactPushers struct {
	s      *e2eServer
	config string
	mu     sync.Mutex
	acked  map[string][]byte // repo:tag → manifest
}

// newCompactPushers pushes the config blob that every manifest names to
// each repository.
func newCompactPushers(t *testing.T, s *e2eServer) *compactPushers {
	config := []byte("{}")
	for r := range 16 {
		if resp, body := s.do(t, http.MethodPost, fmt.Sprintf("/v2/compact/r%d/blobs/uploads/?digest=%s", r, sha256of(config)), octet(len(config)), config); resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST config = %s: %s", resp.Status, body)
		}
	}
	return &compactPushers{s: s, config: sha256of(config), acked: map[string][]byte{}}
}

func (p *compactPushers) manifest(tag string) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},`+
		`"layers":[],"annotations":{"tag":%q}}`, p.config, tag)
}

func (p *compactPushers) run(ctx context.Context, round string, n int) {
	hc := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; (n == 0 || i < n) && ctx.Err() == nil; i += 8 {
				repo, tag := fmt.Sprintf("compact/r%d", i%16), fmt.Sprintf("%s-%d", round, i)
				m := p.manifest(tag)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, p.s.url("/v2/"+repo+"/manifests/"+tag), bytes.NewReader(m))
				req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				resp, err := hc.Do(req)
				if err != nil {
					return // the server died: never acknowledged
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					p.mu.Lock()
					p.acked[repo+":"+tag] = m
					p.mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
}

// check GETs every acknowledged tag.
func (p *compactPushers) check(t *testing.T, when string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	missing := 0
	for ref, m := range p.acked {
		repo, tag, _ := strings.Cut(ref, ":")
		resp, got := p.s.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+tag, nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, m) {
			if missing++; missing <= 5 {
				t.Errorf("%s: GET %s = %s, want the acknowledged manifest", when, ref, resp.Status)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%s: %d of %d acknowledged tags lost", when, missing, len(p.acked))
	}
}

func mustInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

var compactLine = regexp.MustCompile(`metadata\.db: (\d+) -> (\d+) in \S+; writes waited \S+`)

// TestE2ECompact compacts the metadata file of a running server through
// `registry compact` while 8 clients push, then kills the server
// (SIGKILL) with commits made after the compaction in the new file's
// journal, then kills it during compactions, at several points. After
// each restart every tag whose PUT was acknowledged resolves to its
// manifest.
func TestE2ECompact(t *testing.T) {
	s := startServer(t)
	p := newCompactPushers(t, s)
	p.run(t.Context(), "fill", 6000)
	compact := func() (*exec.Cmd, *lockedBuffer, chan error) {
		out := &lockedBuffer{}
		cli := exec.Command(registryBin, "compact", "--bytes", "--config", s.config)
		cli.Stdout, cli.Stderr = out, out
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cli.Wait() }()
		return cli, out, exited
	}

	// A compaction under pushes, through the running server.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { p.run(ctx, "during", 0); close(done) }()
	time.Sleep(100 * time.Millisecond)
	_, out, exited := compact()
	err := <-exited
	cancel()
	<-done
	m := compactLine.FindStringSubmatch(out.String())
	if err != nil || !strings.Contains(out.String(), "using the running server") || m == nil {
		t.Fatalf("registry compact = %v:\n%s\nwant it to compact through the server", err, out.String())
	}
	t.Logf("registry compact: %s", m[0])
	if mustInt(m[2]) >= mustInt(m[1]) {
		t.Errorf("compaction took the file from %s to %s bytes, want it smaller", m[1], m[2])
	}
	p.check(t, "after the compaction")

	// Commits after the compaction, in the new file's journal.
	ctx, cancel = context.WithCancel(t.Context())
	go func() { time.Sleep(300 * time.Millisecond); s.kill(); cancel() }()
	p.run(ctx, "after", 0)
	s.start()
	p.check(t, "after SIGKILL past a compaction")

	// SIGKILL at points during compactions, with pushes going on.
	for round, delay := range []time.Duration{0, 5 * time.Millisecond, 15 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 120 * time.Millisecond} {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { p.run(ctx, fmt.Sprintf("kill%d", round), 0); close(done) }()
		cli, out, exited := compact()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "using the running server"); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				cli.Process.Kill()
				t.Fatalf("registry compact did not reach the server within 20s:\n%s", out.String())
			}
		}
		time.Sleep(delay)
		s.kill()
		cancel()
		<-done
		<-exited
		t.Logf("round %d, SIGKILL %s in: %s", round, delay, strings.TrimSpace(out.String()))
		s.start()
		p.check(t, fmt.Sprintf("round %d", round))
	}

	// Offline, with the server stopped.
	s.stop()
	_, out, exited = compact()
	if err := <-exited; err != nil || !strings.Contains(out.String(), "(offline)") || compactLine.FindString(out.String()) == "" {
		t.Fatalf("registry compact with no server = %v:\n%s\nwant it to compact the store offline", err, out.String())
	}
	s.start()
	p.check(t, "after an offline compaction")
	t.Logf("%d acknowledged tags, all present", len(p.acked))
}

// TestE2ECompactAfterGC: after a GC pass, a server whose metadata file
// grew by pushes (its pages about 70% full, more than 4 MiB of them)
// compacts it on its own, and logs so.
func TestE2ECompactAfterGC(t *testing.T) {
	s := startServer(t)
	p := newCompactPushers(t, s)
	p.run(t.Context(), "fill", 6000)
	if out, err := exec.Command(registryBin, "gc", "--pace", "1", "--config", s.config).CombinedOutput(); err != nil {
		t.Fatalf("registry gc = %v:\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		for _, l := range s.logLines() {
			if l["message"] != "compacted the metadata file" {
				continue
			}
			before, after := l["before_bytes"].(float64), l["after_bytes"].(float64)
			t.Logf("compacted %v -> %v bytes in %v ms, writes held %v ms", before, after, l["duration_ms"], l["writes_held_ms"])
			if after >= before || after == 0 {
				t.Errorf("compaction took the file from %v to %v bytes", before, after)
			}
			p.check(t, "after the compaction")
			if _, body := s.do(t, http.MethodGet, "/metrics", nil, nil); !strings.Contains(string(body), "\nnora_storage_metadata_compactions_total 1\n") {
				t.Error("/metrics does not count the compaction in nora_storage_metadata_compactions_total")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no compaction logged 30s after a GC pass")
		}
	}
}
