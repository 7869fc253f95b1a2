//go:build bench && linux

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchCeiling is the machine's ceiling: a bare net/http handler on
// loopback that answers the same URLs as the registry while doing only
// the work no registry can avoid. Blob pushes hash the body, write it to
// a file on the same filesystem, fsync it and record digest and file in
// one log file made durable, with the file's name in its directory, by
// group commit, so an acknowledged blob can be found after a power loss;
// pulls are http.ServeContent of that file; manifest PUTs append to the
// same log; manifest GETs and tag lists are served from memory. No
// validation, no metadata store, no atomic rename.
//
// It runs in a process of its own (this test binary, started again as
// TestBenchCeilingProcess), as the registry does: in the load client's
// process it would share that process's scheduler, which no server can,
// and a bare handler served 0.70-0.75x as many manifest GETs from a
// process of its own as from the client's.
type benchCeiling struct {
	dir  string
	next atomic.Int64

	mu        sync.Mutex
	uploads   map[string]*benchCeilUpload
	blobs     map[string]string // digest → file
	manifests map[string]benchCeilManifest
	tagLists  map[string][]byte // path → body

	log           *os.File
	logMu, syncMu sync.Mutex
	written       int64 // records appended to log, under logMu
	newFiles      bool  // records since the last sync name new files, under logMu
	synced        int64 // records known durable, under syncMu
}

type benchCeilUpload struct {
	f   *os.File
	h   hash.Hash
	off int64
}

type benchCeilManifest struct {
	body        []byte
	contentType string
	digest      string
}

// Environment of the ceiling process: where it listens and keeps files.
const (
	benchCeilingAddrEnv = "NORA_BENCH_CEILING_ADDR"
	benchCeilingDirEnv  = "NORA_BENCH_CEILING_DIR"
)

// benchCeilingProc is the ceiling process, seen from the bench.
type benchCeilingProc struct {
	t    *testing.T
	pid  int
	base string
	hc   *http.Client
}

// cpu returns the CPU time the ceiling process has used so far.
func (p *benchCeilingProc) cpu() time.Duration { return benchCPU(p.t, p.pid) }

// newBenchCeiling starts the ceiling in a process of its own, keeping its
// files in dir, and returns once it answers.
func newBenchCeiling(t *testing.T, dir string) *benchCeilingProc {
	addr := benchFreeAddr(t)
	// -test.short: TestMain builds the registry for the end-to-end tests
	// otherwise, which the ceiling has no use for.
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBenchCeilingProcess$", "-test.short")
	cmd.Env = append(os.Environ(), benchCeilingAddrEnv+"="+addr, benchCeilingDirEnv+"="+dir)
	stdin, err := cmd.StdinPipe() // the child exits when the parent goes
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the ceiling process: %v", err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	p := &benchCeilingProc{t: t, pid: cmd.Process.Pid, base: "http://" + addr, hc: &http.Client{Timeout: 10 * time.Second}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp, err := p.hc.Get(p.base + "/")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ceiling process did not answer within 10s: %v", err)
		}
	}
}

// forget deletes a blob's file, to keep the ceiling's disk use small.
func (p *benchCeilingProc) forget(digest string) {
	p.call(http.MethodDelete, "/ceiling/blobs/"+digest, nil)
}

// setTagList makes the ceiling serve body for path, a tags/list URL path.
func (p *benchCeilingProc) setTagList(path string, body []byte) {
	p.call(http.MethodPut, "/ceiling/tags?path="+url.QueryEscape(path), body)
}

func (p *benchCeilingProc) call(method, path string, body []byte) {
	req, err := http.NewRequest(method, p.base+path, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		panic(fmt.Sprintf("ceiling %s %s: %v", method, path, err))
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// TestBenchCeilingProcess is the ceiling process that newBenchCeiling
// starts; run otherwise, it skips. It serves until its standard input
// closes.
func TestBenchCeilingProcess(t *testing.T) {
	addr, dir := os.Getenv(benchCeilingAddrEnv), os.Getenv(benchCeilingDirEnv)
	if addr == "" || dir == "" {
		t.Skip("the ceiling process of the benchmarks")
	}
	log, err := os.Create(filepath.Join(dir, "manifests.log"))
	if err != nil {
		t.Fatal(err)
	}
	c := &benchCeiling{
		dir:       dir,
		log:       log,
		uploads:   map[string]*benchCeilUpload{},
		blobs:     map[string]string{},
		manifests: map[string]benchCeilManifest{},
		tagLists:  map[string][]byte{},
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, c)
	io.Copy(io.Discard, os.Stdin)
	ln.Close()
}

func (c *benchCeiling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := c.serve(w, r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

func (c *benchCeiling) serve(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/blobs/uploads/"):
		id := strconv.FormatInt(c.next.Add(1), 10)
		f, err := os.Create(filepath.Join(c.dir, "upload-"+id))
		if err != nil {
			return err
		}
		up := &benchCeilUpload{f: f, h: sha256.New()}
		if d := r.URL.Query().Get("digest"); d != "" {
			if err := up.append(r.Body); err != nil {
				return err
			}
			return c.finish(w, up, d)
		}
		c.mu.Lock()
		c.uploads[id] = up
		c.mu.Unlock()
		w.Header().Set("Location", p+id)
		w.WriteHeader(http.StatusAccepted)
	case strings.Contains(p, "/blobs/uploads/"):
		c.mu.Lock()
		up := c.uploads[path.Base(p)]
		c.mu.Unlock()
		if up == nil {
			return errors.New("no such upload")
		}
		if cr := r.Header.Get("Content-Range"); cr != "" && !strings.HasPrefix(cr, strconv.FormatInt(up.off, 10)+"-") {
			return fmt.Errorf("Content-Range %s does not start at %d", cr, up.off)
		}
		if err := up.append(r.Body); err != nil {
			return err
		}
		if r.Method == http.MethodPut {
			return c.finish(w, up, r.URL.Query().Get("digest"))
		}
		w.Header().Set("Location", p)
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodGet && strings.Contains(p, "/blobs/"):
		c.mu.Lock()
		name := c.blobs[path.Base(p)]
		c.mu.Unlock()
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	case r.Method == http.MethodPut && strings.Contains(p, "/manifests/"):
		return c.putManifest(w, r)
	case r.Method == http.MethodGet && strings.Contains(p, "/manifests/"):
		c.mu.Lock()
		m, ok := c.manifests[p]
		c.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return nil
		}
		hd := w.Header()
		hd.Set("Content-Type", m.contentType)
		hd.Set("Docker-Content-Digest", m.digest)
		hd.Set("Content-Length", strconv.Itoa(len(m.body)))
		w.Write(m.body)
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/tags/list"):
		c.mu.Lock()
		body := c.tagLists[p]
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/ceiling/blobs/"):
		c.forget(path.Base(p))
	case r.Method == http.MethodPut && p == "/ceiling/tags":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.tagLists[r.URL.Query().Get("path")] = body
		c.mu.Unlock()
	default:
		http.NotFound(w, r)
	}
	return nil
}

var benchCopyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// append hashes and writes body in full buffers: socket reads return a
// few dozen KiB at a time, and hashing and writing each of those costs
// more syscalls and calls than the registry makes.
func (up *benchCeilUpload) append(body io.Reader) error {
	bp := benchCopyBuffers.Get().(*[]byte)
	defer benchCopyBuffers.Put(bp)
	buf := *bp
	for {
		k, err := io.ReadFull(body, buf)
		if k > 0 {
			up.h.Write(buf[:k])
			if _, werr := up.f.Write(buf[:k]); werr != nil {
				return werr
			}
			up.off += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// finish makes the upload durable, checks its digest and records it.
func (c *benchCeiling) finish(w http.ResponseWriter, up *benchCeilUpload, want string) error {
	defer up.f.Close()
	if err := up.f.Sync(); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(up.h.Sum(nil)); got != want {
		return fmt.Errorf("digest %s, want %s", got, want)
	}
	if err := c.appendLog("blob "+want, []byte(up.f.Name()), true); err != nil {
		return err
	}
	c.mu.Lock()
	c.blobs[want] = up.f.Name()
	c.mu.Unlock()
	w.Header().Set("Docker-Content-Digest", want)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// forget empties a blob's file, to keep the ceiling's disk use small. It
// truncates rather than deletes: on ext4 without a journal (this VM's
// disk), each file created in the minute after deletions scans past the
// inodes just freed (the kernel's recently_deleted), so deleting here
// charged the ceiling's clean-up to the next server's uploads: 400 deleted
// files made each creation in their directory cost 71 µs of CPU instead of
// 18-25. The files go with the bench's directory.
func (c *benchCeiling) forget(digest string) {
	c.mu.Lock()
	name := c.blobs[digest]
	delete(c.blobs, digest)
	c.mu.Unlock()
	if name != "" {
		os.Truncate(name, 0)
	}
}

func (c *benchCeiling) putManifest(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	m := benchCeilManifest{body: body, contentType: r.Header.Get("Content-Type"), digest: "sha256:" + hex.EncodeToString(sum[:])}
	if err := c.appendLog(r.URL.Path, body, false); err != nil {
		return err
	}
	byDigest := path.Dir(r.URL.Path) + "/" + m.digest
	c.mu.Lock()
	c.manifests[r.URL.Path] = m
	c.manifests[byDigest] = m
	c.mu.Unlock()
	w.Header().Set("Location", byDigest)
	w.Header().Set("Docker-Content-Digest", m.digest)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// appendLog writes a record and returns once it is durable, with the name
// of the file it names when newFile: that file was created in c.dir, and
// a new name survives a power loss only once its directory is synced.
// Concurrent callers share fsyncs: whoever syncs makes every record
// written so far durable (group commit).
func (c *benchCeiling) appendLog(key string, body []byte, newFile bool) error {
	c.logMu.Lock()
	_, err := fmt.Fprintf(c.log, "%s %d\n%s\n", key, len(body), body)
	c.written++
	c.newFiles = c.newFiles || newFile
	mine := c.written
	c.logMu.Unlock()
	if err != nil {
		return err
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.synced >= mine {
		return nil
	}
	c.logMu.Lock()
	upto, syncDir := c.written, c.newFiles
	c.newFiles = false
	c.logMu.Unlock()
	if syncDir {
		dir, err := os.Open(c.dir)
		if err != nil {
			return err
		}
		err = dir.Sync()
		dir.Close()
		if err != nil {
			return err
		}
	}
	if err := c.log.Sync(); err != nil {
		return err
	}
	c.synced = upto
	return nil
}
